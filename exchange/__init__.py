"""The venue boundary: the port, the ccxt adapter, the paper venue and the loopback emulator. Only here imports ccxt."""
