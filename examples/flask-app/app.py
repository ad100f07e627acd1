"""A small Flask app for the deployer's tests and README: says which replica answered.

Run it as the deployer does: `flask --app app run --host 0.0.0.0 --port $PORT`.
"""

import socket

from flask import Flask

app = Flask(__name__)


@app.get("/")
def hello() -> str:
    return f"hello from {socket.gethostname()}\n"
