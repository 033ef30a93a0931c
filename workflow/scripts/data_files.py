"""Rule data_files: find the files of one torchvision folder under data.root (or, for Fashion-MNIST,
Debian's package), or download them there once when data.download is on, atomically
(toroids.datafiles.download_into), before any job reads them; the record lists where they were found. One
job per folder, so that no two jobs download the same archive."""

import json

from toroids import datafiles, jobs
from toroids.files import atomic_write_text

log = jobs.start(snakemake)
ops = jobs.operational(snakemake.config)
name, root = snakemake.params.name, ops["data"]["root"]
found = datafiles.locate(name, root)
if found is None and ops["data"]["download"]:
    log(f"{name}: not under {root}; downloading it there (torchvision, checksums verified), atomically")
    found = datafiles.download_into(
        name, root, lambda tmp: jobs.load_data({"name": name, "options": {}, "root": tmp, "download": True})
    )
if found is None:
    raise SystemExit(f"{name}: {datafiles.not_found(name, root)}")
log(f"{name}: {len(found.files)} files in {found.root} ({found.layout})")
record = {"name": name, "layout": found.layout, "root": str(found.root),
          "files": [{"path": str(f), "bytes": f.stat().st_size} for f in found.files]}  # fmt: skip
atomic_write_text(snakemake.output[0], json.dumps(record, indent=1, sort_keys=True))
