"""Rule study_config: the validated config, defaults filled in, as the report shows it.

The settings that change no result (toroids.config.OPERATIONAL) are not this rule's params, so changing them
reruns nothing; they are written as they were when this file was last written, which is when the results
beside it were made."""

import yaml

from toroids import jobs, pages
from toroids.config import OPERATIONAL
from toroids.files import atomic_write_text

log = jobs.start(snakemake)
config = dict(snakemake.params.config)
for path in OPERATIONAL:
    node, live = config, snakemake.config
    for key in path[:-1]:
        node, live = node.setdefault(key, {}), live[key]
    node[path[-1]] = live[path[-1]]
header = (
    "# operational settings (device, threads, data.root, data.download, evaluate.chunk_size, resources):\n"
    "# as when this file was written; changing them reruns nothing and changes no result\n"
)
text = header + yaml.safe_dump(config, sort_keys=False, allow_unicode=True)
atomic_write_text(snakemake.output.config, text)
atomic_write_text(snakemake.output.page, pages.config_page(config["study"], text))
log(f"wrote the config of study {config['study']!r}: {len(config['experiments'])} experiments")
