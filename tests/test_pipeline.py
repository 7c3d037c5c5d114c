import pytest

from multisr.errors import UserError
from multisr.runs.pipeline import builtin_pipelines, load_pipeline, with_overrides


def test_builtin_pipelines_load_with_defaults_filled_in():
    assert builtin_pipelines() == ["bicubic", "merge", "multiframe", "presenters", "single"]
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
        ("stages = [1, 2]", "stages[0] is 1; expected a [[stages]] table"),
        ('stages = ["upscale"]', "stages[0] is 'upscale'; expected a [[stages]] table"),
        ('[[stages]]\nname = "upscale"\nkernel = 3', "upscale.kernel: expected a string, got 3"),
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


@pytest.mark.parametrize(
    "override, message",
    [
        ("fuse.method=[1,2]", "overrides fuse.method: expected a string, got [1, 2]"),
        ("fuse.method=avg", "overrides fuse.method: expected one of median, mean, got 'avg'"),
        ("srcnn.batch_size=2.5", "overrides srcnn.batch_size: expected an integer from 1 to 1024, got 2.5"),
        ("srcnn.batch_size=0", "overrides srcnn.batch_size: expected an integer from 1 to 1024, got 0"),
        ("srcnn.batch_size=true", "overrides srcnn.batch_size: expected an integer from 1 to 1024, got True"),
        ("register.max_scale_change=-1", "overrides register.max_scale_change: expected a number from 0 to 10, got -1.0"),
        ("register.min_success=nan", "overrides register.min_success: expected a finite number, got nan"),
        ("register.min_success=fast", "overrides register.min_success: expected a number from 0 to 1, got 'fast'"),
        ("register.iterations=-3", "overrides register.iterations: expected an integer from 1 to 100, got -3"),
        ("register.refine=ECC", "overrides register.refine: expected one of robust, none, got 'ECC'"),
        ("upscale.kernel=Bicubic", "overrides upscale.kernel: expected one of matlab, opencv, got 'Bicubic'"),
    ],
)
def test_overrides_of_the_wrong_type_or_value_are_refused(override, message):
    with pytest.raises(UserError) as error:
        with_overrides(load_pipeline("presenters"), [override])
    assert str(error.value) == message


@pytest.mark.parametrize(
    "override, message",
    [
        ("reconstruct.tv_weight=nan", "overrides reconstruct.tv_weight: expected a finite number, got nan"),
        ("reconstruct.tv_weight=-1", "overrides reconstruct.tv_weight: expected a number >= 0, got -1.0"),
        ("reconstruct.psf=Box", "overrides reconstruct.psf: psf: expected auto, matlab, box or box+SIGMA"),
        ("reconstruct.refine_rounds=11", "overrides reconstruct.refine_rounds: expected an integer from 0 to 10, got 11"),
        ("reconstruct.iterations=abc", "stage 'reconstruct' has no parameter 'iterations'"),
    ],
)
def test_reconstruct_parameters_are_checked_before_any_stage(override, message):
    with pytest.raises(UserError, match=message.replace("+", r"\+").replace("[", r"\[")):
        with_overrides(load_pipeline("multiframe"), [override])


def test_an_int_where_a_float_is_expected_becomes_a_float():
    pipeline = with_overrides(load_pipeline("multiframe"), ["reconstruct.tv_weight=0"])
    assert {stage.name: p for stage, p in pipeline.steps}["reconstruct"]["tv_weight"] == 0.0


def test_a_pipeline_file_that_is_not_utf8_is_refused(tmp_path):
    path = tmp_path / "latin.toml"
    path.write_bytes('description = "caf\xe9"'.encode("latin-1"))
    with pytest.raises(UserError, match="expected a UTF-8 TOML pipeline file"):
        load_pipeline(str(path))
