"""The lobby service: the Lobby DNA's logic for the agents a node hosts."""
