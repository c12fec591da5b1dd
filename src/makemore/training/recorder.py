"""The subscribers that write the run directory: metrics.jsonl and TensorBoard from the events,
the kept best model, the checkpoints and summary.json. Rank 0 alone has a Recorder."""

from __future__ import annotations

import time

import torch

from .. import tensorboard
from ..store import MODEL, STATE, SUMMARY, RunDir, write_json
from ..data import SPLIT_NAMES
from ..evaluate import EvalResult, evaluate, sample_note
from . import state
from .events import Diverged, Evaluated, Evaluating, Event, Finished, Fitted, Started


def sampled_labels(labels: list[str], sample: dict | None) -> list[str]:
    return labels if sample is None else [labels[i] for i in sample["rows"]]


def evaluate_splits(model, sets: dict, events, step: int, final: bool, labels: dict | None = None) -> dict[str, EvalResult]:
    """`model` on each split of `sets`, each announced first (an Evaluating event)."""
    results = {}
    for split, packed in sets.items():
        events.emit(Evaluating(step, split, final))
        results[split] = evaluate(model, packed, split, (labels or {}).get(split))
    return results


class Recorder:
    """Writes what `training` (a loop.Training) reports into its run directory."""

    def __init__(self, run: RunDir, training, board: bool):
        self.run, self.training, self.wants_board = run, training, board
        self.board: tensorboard.Board | None = None

    def __call__(self, event: Event) -> None:
        if isinstance(event, Started) and self.wants_board:
            self.board = tensorboard.Board(self.run.path, event.step)
        elif isinstance(event, Fitted):
            self.run.update_config(model_config=event.model_config.to_dict(), params=event.params,
                                   **({"choice": event.choice} if event.choice else {}))
        elif isinstance(event, Evaluated):
            self.evaluated(event)
        elif isinstance(event, (Diverged, Finished)):
            self.close()

    def evaluated(self, event: Evaluated) -> None:
        """Append the evaluation to metrics.jsonl; save the kept model if its val NLL is the best yet."""
        record = event.record()
        if self.board:
            self.board.steps(event.step - len(event.step_losses), event.step_losses)
        self.run.append_metrics(record)
        if self.board:
            self.board.evaluation(record)
        progress = self.training.progress
        if event.val_loss < progress.best_val:
            progress.best_val = event.val_loss
            self.run.save_model(self.training.kept)

    def checkpoint(self, rngs: list[torch.Tensor] | None) -> None:
        """The state --resume starts from, with the diagnostics recorded up to it."""
        if self.training.diagnostics:
            self.training.diagnostics.flush()
        state.save(self.run.file(STATE), self.training, rngs)

    def rewind(self, step: int) -> None:
        """A resumed run continues from the checkpoint at `step`: what was recorded after it goes."""
        self.run.truncate_metrics(step)

    def summarise(self, interrupted: bool, diverged: bool) -> dict[str, EvalResult]:
        """Reload the best model by val NLL, evaluate it on every split and write summary.json. Its
        train and val NLL were measured when it was kept, on these same weights (metrics.jsonl):
        they are taken from there, exactly as evaluating again would give them, and only the test
        split is evaluated now (all three for labelled data, whose figures go by label too).
        Past evaluate.SAMPLE_CHARS the train figure is its checkpoints' seeded sample's; val and
        test are whole, but for an interrupted run, which stops within seconds: over their samples."""
        t, began = self.training, time.perf_counter()
        if not self.run.file(MODEL).exists():  # Ctrl-C before the first evaluation: keep what there is
            self.run.save_model(t.kept)
        self.run.load_weights(t.model)
        labels = t.data.split_labels or {}
        views = {s: t.evals.final_view(s, interrupted) for s in SPLIT_NAMES}
        known = {} if labels else self.kept_figures(t.progress.best_val)
        if "val" in t.evals.sampled and not interrupted:
            known.pop("val", None)  # measured on its sample: the final figure is the whole split's
        fresh = evaluate_splits(t.model, {s: view.to(t.device) for s, (view, _) in views.items() if s not in known}, t.events,
                                t.progress.step, final=True, labels={s: sampled_labels(labels[s], views[s][1]) for s in labels})
        final = {s: fresh[s] if s in fresh else EvalResult.of_nll(s, known[s], view.chars, len(view))
                 for s, (view, _) in views.items()}
        for s, (_, sample) in views.items():
            final[s].sample = None if sample is None else sample_note(sample)
        self.final_seconds = time.perf_counter() - began
        write_json(self.run.file(SUMMARY), {"step": t.progress.step, "seconds": round(t.progress.elapsed, 2),
                                            "final_evaluation_seconds": round(self.final_seconds, 2),
                                            "interrupted": interrupted, "diverged": diverged,
                                            "threads": torch.get_num_threads(), "processes": t.ranks.world,
                                            **{s: r.to_dict() for s, r in final.items()}})
        return final

    def kept_figures(self, best_val: float) -> dict[str, float]:
        """The train and val NLL recorded when the kept model was saved: the first evaluation that
        reached the best val NLL (a later one that only equals it saves nothing). None recorded: {}."""
        for record in self.run.read_metrics():
            if record.get("val_loss") == best_val:
                return {"train": record["train_loss"], "val": record["val_loss"]}
        return {}

    def close(self) -> None:
        if self.board:
            self.board.close()
            self.board = None
