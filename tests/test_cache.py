"""toroids.cache: kept results come back only under the key they were kept with."""

import os

import pytest

from toroids import cache


@pytest.fixture()
def outputs(tmp_path):
    paths = [tmp_path / "m" / "final.safetensors", tmp_path / "m" / "meta.json"]
    paths[0].parent.mkdir()
    for i, p in enumerate(paths):
        p.write_bytes(f"output {i}".encode())
    return paths


def test_the_key_changes_with_each_part_and_not_with_key_order():
    k = cache.key("train", {"seed": 0, "lr": 0.1})
    assert k == cache.key("train", {"lr": 0.1, "seed": 0})
    assert k != cache.key("train", {"seed": 1, "lr": 0.1})
    assert k != cache.key("measure", {"seed": 0, "lr": 0.1})
    assert k != cache.key("train", {"seed": 0, "lr": 0.1}, "digest")


def test_kept_outputs_come_back_after_snakemake_deletes_them(outputs):
    cache.keep(outputs, "k1")
    for p in outputs:
        p.unlink()  # what Snakemake does to a job's outputs before running it again
    assert cache.restore(outputs, "k1")
    assert [p.read_bytes() for p in outputs] == [b"output 0", b"output 1"]


def test_another_key_or_a_partial_copy_restores_nothing(outputs):
    cache.keep(outputs, "k1")
    for p in outputs:
        p.unlink()
    assert not cache.restore(outputs, "k2")
    assert not any(p.exists() for p in outputs)
    next(outputs[1].parent.glob(".meta.json.k1.kept")).unlink()
    assert not cache.restore(outputs, "k1")  # all or nothing
    assert not outputs[0].exists()


def test_a_new_keep_drops_the_copies_of_other_keys(outputs):
    cache.keep(outputs, "k1")
    outputs[0].unlink()
    outputs[0].write_bytes(b"retrained")
    cache.keep(outputs[:1], "k2")
    kept = sorted(p.name for p in outputs[0].parent.glob(".final.safetensors.*.kept"))
    assert kept == [".final.safetensors.k2.kept"]
    assert cache.restore(outputs[:1], "k2") and outputs[0].read_bytes() == b"retrained"


def test_a_restored_output_is_newer_than_its_kept_copy_was(outputs):
    """Restored outputs must look newer than the plan file that made Snakemake rerun the job."""
    cache.keep(outputs, "k1")
    for p in outputs:
        os.utime(p, (1_000_000, 1_000_000))
        p.unlink()
    assert cache.restore(outputs, "k1")
    assert all(p.stat().st_mtime > 1_000_000 for p in outputs)


def test_the_code_version_is_that_of_the_package_sources():
    assert len(cache.code_version()) == 64 and cache.code_version() == cache.code_version()


def test_file_digest_is_the_sha256_of_the_bytes(tmp_path):
    import hashlib

    p = tmp_path / "f"
    p.write_bytes(b"x" * 3_000_000)
    assert cache.file_digest(p) == hashlib.sha256(b"x" * 3_000_000).hexdigest()
