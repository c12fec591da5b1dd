"""What one request may ask for, and how much of the machine inference may use."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Limits:
    """What one request may ask for, and how much of the machine inference may use."""

    max_n: int = 1000  # items per sample request
    max_texts: int = 100  # items per score request
    max_top: int = 10  # alternatives shown per position
    max_body: int = 64 * 1024  # bytes of request body
    # Inference threads. Each runs PyTorch on one thread (serve() sets that): requests are small,
    # so running two at once uses two cores better than splitting one tiny matmul across them,
    # and worker threads that each spun up their own OpenMP pool would oversubscribe the CPU.
    workers: int = 2
    # A request that generates more items than this at once (counting the extra draws that novel,
    # suffix, contains or unique need) waits for a lane of its own, one such request at a time, so
    # it never holds every worker.
    big_draws: int = 256
    # Items x labels one request may score. A labelled model scores an item under any label once
    # per label (and a sample request scores what it drew): with thousands of labels even a few
    # items are a lot of work, refused up front rather than run into the time limit.
    max_pairs: int = 5_000
    # Seconds of inference one request may take; it is stopped between two model steps or batches
    # (deadline.py), answered 503, and its worker freed.
    time_limit: float = 10.0
    # Seconds a client has to send a request's head (request line and headers; from the
    # connection's opening or its previous response), and again its body. A connection that
    # stalls is answered 408 and closed, so half-sent requests cannot hold connections open.
    read_timeout: float = 10.0
    # Training from the page (POST /api/train). serve() turns it off on a server that listens
    # beyond this machine, unless started with --allow-training: a job costs minutes of CPU.
    training: bool = True
    train_items: int = 100_000  # items one list may hold
    train_bytes: int = 4 * 1024 * 1024  # bytes of a training request's body (the list, as JSON)
    train_seconds: float = 600.0  # the longest time budget a job may ask for
    queued_jobs: int = 4  # jobs waiting behind the one training; past it a request is refused (409)
    # Threads the training job's PyTorch uses; one leaves the other cores to the inference workers.
    train_threads: int = 1

    def body_limit(self, path: str) -> int:
        """Bytes a request to `path` may send: a list to train on may be larger than other requests."""
        return self.train_bytes if path == "/api/train" and self.training else self.max_body

    def shown(self) -> dict:
        """What the page and /api/limits show."""
        return {"n": self.max_n, "texts": self.max_texts, "body_bytes": self.max_body, "seconds": self.time_limit,
                "training": self.training, "train_items": self.train_items, "train_bytes": self.train_bytes,
                "train_seconds": self.train_seconds, "queued_jobs": self.queued_jobs}
