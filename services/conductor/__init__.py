"""The conductor service: keystore, cells, app tokens, DNA clones."""
