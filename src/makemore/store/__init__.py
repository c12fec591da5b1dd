"""The run directory's store: it knows files, not models.

    files.py    atomic writes, bounded reads of regular files, the one-line errors naming a file
    records.py  .jsonl records, appended so a crash cuts only the last line
    tensors.py  safetensors files: headers checked before tensors, tensors checked against a model
    schema.py   config.json: its keys, types and ranges; the run's vocabulary and data from it
    run.py      RunDir: the files of a run, its lock, starting over and discarding

Nothing here imports the models: what a weights file must hold comes from the model it is
checked against (its state_dict, and CharModel.shape_notes), and the model names a config.json
may name are passed in (RunDir.read_config(models)).
"""

from .files import CONFIG, RESTORE, atomic_file, atomic_write, damaged, read_json, write_json
from .records import read_records
from .run import (DIAGNOSTICS, LOCK, METRICS, MODEL, STATE, SUMMARY, TEMPORARY, TENSORBOARD, TRAINING_OUTPUTS, RunDir)
from .schema import check_config, run_dataset, run_vocabulary
from .tensors import (check_shapes, header_data_bytes, header_metadata, load_state, load_tensors, loaded_bytes, save_tensors,
                      saved_bytes, tensor_bytes, tensor_shapes)

__all__ = ["CONFIG", "DIAGNOSTICS", "LOCK", "METRICS", "MODEL", "RESTORE", "STATE", "SUMMARY", "TEMPORARY", "TENSORBOARD",
           "TRAINING_OUTPUTS", "RunDir", "atomic_file", "atomic_write", "check_config", "check_shapes", "damaged",
           "header_data_bytes", "header_metadata", "load_state", "load_tensors", "loaded_bytes", "read_json", "read_records",
           "run_dataset", "run_vocabulary", "save_tensors", "saved_bytes", "tensor_bytes", "tensor_shapes", "write_json"]
