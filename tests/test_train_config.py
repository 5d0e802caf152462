"""Training configuration files and the learning-rate schedule."""

import glob
import os

import pytest

from training.config import load_config

from .conftest import REPO


@pytest.mark.parametrize("path", sorted(glob.glob(os.path.join(REPO, "configs", "*.toml"))))
def test_shipped_configs_load(path):
    cfg = load_config(path)
    assert cfg.network.arch in ("hamr", "baseline") and cfg.optim.steps > 0 and cfg.run.out


def test_overrides_and_errors(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('[network]\nbackbone = "resnet34"\ninput_size = 96\n[optim]\nsteps = 10\n')
    cfg = load_config(str(path), ["optim.steps=3", 'run.out="x/y"', "loss.silhouette=0.0"])
    assert (cfg.network.backbone, cfg.network.input_size, cfg.optim.steps, cfg.run.out) == ("resnet34", 96, 3, "x/y")
    assert cfg.loss["silhouette"] == 0.0 and cfg.loss["joints_3d"] == 1.0
    with pytest.raises(ValueError, match=r"\[loss\]: unknown term\(s\) seg"):
        load_config(str(path), ["loss.seg=0.0"])
    with pytest.raises(ValueError, match=r"\[optim\]: unknown setting\(s\) stepz"):
        load_config(str(path), ["optim.stepz=3"])
    with pytest.raises(ValueError, match="must look like section.name=value"):
        load_config(str(path), ["steps"])
    with pytest.raises(ValueError, match="config file not found"):
        load_config(str(tmp_path / "missing.toml"))
    path.write_text("[network\n")
    with pytest.raises(ValueError, match="not valid TOML"):
        load_config(str(path))
