import pytest

from multisr.errors import UserError
from multisr.pipeline import builtin_pipelines, load_pipeline, with_overrides


def test_builtin_pipelines_load_with_defaults_filled_in():
    assert builtin_pipelines() == ["bicubic", "multiframe", "presenters", "single"]
    presenters = load_pipeline("presenters")
    assert [stage.name for stage, _ in presenters.steps] == ["register", "upscale", "srcnn", "realign", "fuse"]
    params = {stage.name: p for stage, p in presenters.steps}
    assert params["srcnn"]["model"] == "srcnn-955" and params["register"]["refine"] == "robust"
    assert params["register"]["min_success"] == 0.5  # a default the file does not set


@pytest.mark.parametrize(
    "text, message",
    [
        ('[[stages]]\nname = "sharpen"', "stages[0].name is 'sharpen'; expected one of"),
        ('[[stages]]\nname = "upscale"\nkernal = "matlab"', "stage 'upscale' has no parameter 'kernal'; allowed: kernel"),
        ('[[stages]]\nname = "fuse"', "stage 'fuse' needs 'hr', which no earlier stage makes"),
        ('colour = 1\n[[stages]]\nname = "upscale"', "unknown key 'colour'"),
        ('[[stages]]\nname = "upscale"\n[[stages]]\nname = "upscale"', "stage 'upscale' appears twice"),
        ("stages = [", "expected TOML"),
    ],
)
def test_bad_pipeline_files_are_refused_with_the_file_and_key(tmp_path, text, message):
    path = tmp_path / "mine.toml"
    path.write_text(text)
    with pytest.raises(UserError, match=str(path)) as error:
        load_pipeline(str(path))
    assert message in str(error.value)


def test_overrides_parse_toml_values_and_refuse_unknown_keys():
    pipeline = with_overrides(load_pipeline("multiframe"), ["reconstruct.tv_weight=0.01", "register.refine=none"])
    params = {stage.name: p for stage, p in pipeline.steps}
    assert params["reconstruct"]["tv_weight"] == 0.01 and params["register"]["refine"] == "none"
    assert load_pipeline("multiframe").steps[1][1]["tv_weight"] == 0.0005  # the original is untouched
    with pytest.raises(UserError, match="stage 'fuse' has no parameter 'nope'; allowed: method"):
        with_overrides(load_pipeline("presenters"), ["fuse.nope=1"])
    with pytest.raises(UserError, match="has no stage 'srcnn'"):
        with_overrides(load_pipeline("multiframe"), ["srcnn.model=srcnn-915"])
    with pytest.raises(UserError, match="expected STAGE.PARAM=VALUE"):
        with_overrides(load_pipeline("presenters"), ["fuse"])
