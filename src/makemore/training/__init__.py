"""Training a model into a run directory, in the order one step happens.

    update.py    one optimiser step: the learning rate, the optimiser, the loss (DDP, compile, autocast),
                 the weight average
    loop.py      `Training`: model, optimiser, batches and one `Progress`; the loop, top to bottom
    events.py    what the loop reports (started, step, evaluated, checkpointed, diverged, finished)
                 and who hears it
    recorder.py  the subscribers that write: metrics.jsonl, TensorBoard, the kept best model,
                 checkpoints, summary.json; and the progress bar and log lines
    state.py     state.safetensors: its tensor names and metadata, written, read and checked here alone

`makemore.trainer` checks the options, makes the run directory and hands over to `Training`.
"""
