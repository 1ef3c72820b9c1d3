"""The Pusher's copy is all or nothing (issue 26.13): a Pusher killed mid-copy left a partial
version folder in the push directory; now a version folder appears complete or not at all."""
import os

import pytest
from tfx.components.pusher import executor as tfx_pusher
from tfx.proto import pusher_pb2
from tfx.types import standard_artifacts
from tfx.types import standard_component_specs as specs
from tfx.utils import proto_utils

from components import push


def _model(tmp_path):
    model = standard_artifacts.Model()
    model.uri = str(tmp_path / "model")
    serving = tmp_path / "model" / "Format-Serving"
    (serving / "variables").mkdir(parents=True, exist_ok=True)
    (serving / "variables" / "variables.index").write_bytes(b"index")
    (serving / "saved_model.pb").write_bytes(b"graph")
    return model


def _push(tmp_path, executor, base):
    blessing = standard_artifacts.ModelBlessing()
    blessing.uri = str(tmp_path / "blessing")
    blessing.set_int_custom_property("blessed", 1)
    pushed = standard_artifacts.PushedModel()
    pushed.uri = str(tmp_path / f"pushed-{len(os.listdir(tmp_path))}")
    destination = pusher_pb2.PushDestination(filesystem=pusher_pb2.PushDestination.Filesystem(base_directory=base))
    executor.Do({specs.MODEL_KEY: [_model(tmp_path)], specs.MODEL_BLESSING_KEY: [blessing]},
                {specs.PUSHED_MODEL_KEY: [pushed]},
                {specs.PUSH_DESTINATION_KEY: proto_utils.proto_to_json(destination)})
    return pushed


def _killed_copy(*args, **kwargs):
    raise KeyboardInterrupt  # what kill -9 in the middle of the copy leaves is the same folder


@pytest.mark.parametrize("executor", [push.Executor])
def test_a_push_killed_mid_copy_leaves_no_version_folder(tmp_path, monkeypatch, executor):
    base = str(tmp_path / "serving" / "eurosat")
    with monkeypatch.context() as patch:
        patch.setattr(tfx_pusher.io_utils, "copy_file", _killed_copy)  # saved_model.pb, copied last
        with pytest.raises(KeyboardInterrupt):
            _push(tmp_path, executor(), base)
    assert [name for name in os.listdir(base) if name.isdigit()] == []  # nothing a server could take
    pushed = _push(tmp_path, executor(), base)  # the next push cleans up and pushes
    version = pushed.get_string_custom_property("pushed_version")
    assert os.listdir(base) == [version]
    assert pushed.get_string_custom_property("pushed_destination") == os.path.join(base, version)
    assert sorted(os.listdir(os.path.join(base, version))) == ["saved_model.pb", "variables"]


def test_cloud_destinations_keep_tfx_copy(monkeypatch):
    calls = []
    monkeypatch.setattr(tfx_pusher.Executor, "Do", lambda self, i, o, e: calls.append(e))
    destination = pusher_pb2.PushDestination(
        filesystem=pusher_pb2.PushDestination.Filesystem(base_directory="gs://b/serving/eurosat"))
    exec_properties = {specs.PUSH_DESTINATION_KEY: proto_utils.proto_to_json(destination)}
    push.Executor().Do({}, {}, exec_properties)
    assert calls == [exec_properties]
