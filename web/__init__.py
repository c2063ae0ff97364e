"""The live viewer: a Tornado server that subscribes to MQTT and pushes to browsers over WebSocket.

Speaks only MQTT and WebSocket; knows nothing of models or shared memory.
"""
