"""kizuna-group-dht: a node's spaces and the signed ops it holds for them, placed by rendezvous hashing."""
