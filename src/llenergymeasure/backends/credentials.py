"""Which API key a server gets, and keeping it, and a server's escape codes, out of what is printed.

A benchmark file arrives in a pull request and the server it names is anybody's. So a key is read
only from an environment variable the *user* named: the default ``OPENAI_API_KEY``, ``llem run
--api-key-env NAME``, ``pytest --llem-api-key-env NAME``, a Python caller's argument, or the user
config. A variable a file names (``openai.api_key_env: CI_DEPLOY_TOKEN``) is never read: sending it
would hand a CI secret to a URL the file chose. Naming that variable yourself is the opt-in.
A dry run sends no key at all (see core/server.py).
"""

from __future__ import annotations

import os

from llenergymeasure.config.models import ExperimentConfig
from llenergymeasure.text import printable

DEFAULT_KEY_ENV = "OPENAI_API_KEY"
KEY_FIELD = "openai.api_key_env"


def named_by_file(config: ExperimentConfig) -> str | None:
    """The file and line that chose ``openai.api_key_env``, when a file (not the user) did."""
    if config.openai.api_key_env == DEFAULT_KEY_ENV or not config.set_by_file(KEY_FIELD):
        return None
    return config.sources().get(KEY_FIELD, "an experiment file")


def api_key(config: ExperimentConfig) -> str | None:
    """The key to send, or None: no key set, or its variable was named by a file."""
    if named_by_file(config):
        return None
    return os.environ.get(config.openai.api_key_env) or None


def key_problem(config: ExperimentConfig) -> str | None:
    """Why the run will not send the key the config asks for (a pre-flight problem), or None."""
    origin = named_by_file(config)
    name = config.openai.api_key_env
    if origin is None or not os.environ.get(name):
        return None
    return (f"{KEY_FIELD}: {origin} names the environment variable {name}, which is set here; a benchmark file "
            f"cannot choose which secret goes to the server it names ({config.openai.base_url}). If that server "
            f"should get it, name the variable yourself: llem run --api-key-env {name}, pytest --llem-api-key-env "
            f"{name}, or openai.api_key_env in your user config")


def request_headers(config: ExperimentConfig) -> dict[str, str]:
    key = api_key(config)
    return {"Authorization": f"Bearer {key}"} if key else {}


def server_text(text: str, config: ExperimentConfig | None) -> str:
    """Text a server sent (an error body, a model id, an exception), safe to print: no control
    characters, and the API key, should the server echo it, as ``***``."""
    key = api_key(config) if config is not None else None
    if key:
        text = text.replace(key, "***")
    return printable(text)
