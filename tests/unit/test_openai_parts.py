"""``backend: openai`` without a server: its config section, the request it sends, where its
energy comes from, what the pytest plugin makes of it, and its summary."""

from __future__ import annotations

import socket

import pytest

from llenergymeasure.backends.openai import error_text, request_body, request_headers
from llenergymeasure.cli.display import print_result
from llenergymeasure.config.loader import load_experiment_config
from llenergymeasure.core.server import decoder_warnings, server_gpus, server_meter
from llenergymeasure.energy import hardware
from llenergymeasure.energy.sources import SourceStatus
from llenergymeasure.exceptions import ConfigError
from pytest_llem import needs
from pytest_llem.settings import Machine
from tests.fakes.pynvml import FakeGpu, FakeNvml
from tests.unit.result_builders import make_repeat, make_result


def config(**overrides):
    return load_experiment_config(cli_overrides={"model": "served-model", "backend": "openai", **overrides},
                                  user_config_defaults={})


def write(tmp_path, text):
    path = tmp_path / "exp.yaml"
    path.write_text(text)
    return path


@pytest.fixture
def fake_gpus():
    hardware.set_pynvml(FakeNvml([FakeGpu("GPU-aaaaaaaa-1", counter_mj=lambda t: int(t * 100_000)),
                                  FakeGpu("GPU-bbbbbbbb-2", counter_mj=lambda t: int(t * 100_000))]))
    yield
    hardware.set_pynvml(None)


# --- config -------------------------------------------------------------------------------------------------------

def test_defaults_and_the_url_is_kept_without_a_trailing_slash():
    server = config(**{"openai.base_url": "https://llm.example.com:8443/v1/"}).openai
    assert server.base_url == "https://llm.example.com:8443/v1"
    assert (server.concurrency, server.request_rate, server.timeout_s, server.api_key_env, server.gpus,
            server.server_pid) == (1, None, 60.0, "OPENAI_API_KEY", None, None)
    assert config().openai.base_url == "http://127.0.0.1:8000/v1"


@pytest.mark.parametrize(("line", "message"), [
    ("base_url: ftp://host/v1", "exp.yaml:4: openai.base_url: Value error, must be an http:// or https:// URL"),
    ("base_url: http://user:pw@host/v1", "must not hold credentials"),
    ("base_url: http://host:99999/v1", "not a URL"),
    ("base_url: http://host/v1?x=1", "must not have a query"),
    ("concurrency: 0", "openai.concurrency: Input should be greater than or equal to 1"),
    ("request_rate: 0", "openai.request_rate: Input should be greater than 0"),
    ("timeout_s: 100000", "openai.timeout_s: Input should be less than or equal to 3600"),
    ("api_key_env: 'MY KEY'", "openai.api_key_env: String should match pattern"),
    ("gpus: [cuda:x]", "openai.gpus: Value error, a GPU is a visible index (0), 'cuda:N', or a UUID"),
    ("gpus: [true]", "openai.gpus: Value error, a GPU is"),
    ("gpus: []", "openai.gpus: List should have at least 1 item"),
    ("server_pid: 0", "openai.server_pid: Input should be greater than or equal to 1"),
    ("api_key: sk-secret", "exp.yaml:4: 'openai.api_key' is not allowed: an API key is never read from a config "
                           "file: put it in an environment variable and name that variable in openai.api_key_env"),
])
def test_bad_server_settings_are_config_errors_naming_file_line_and_key(tmp_path, line, message):
    path = write(tmp_path, f"model: m\nbackend: openai\nopenai:\n  {line}\n")
    with pytest.raises(ConfigError) as caught:
        load_experiment_config(path, user_config_defaults={})
    assert message in str(caught.value)
    assert "pw@" not in str(caught.value) and "sk-secret" not in str(caught.value)


def test_gpus_take_indexes_cuda_names_and_uuids():
    assert config(**{"openai.gpus": [0, "cuda:1", "GPU-0123abcd"]}).openai.gpus == [0, "cuda:1", "GPU-0123abcd"]


def test_only_the_section_of_the_backend_in_use_is_dumped_and_hashed():
    pytorch = load_experiment_config(cli_overrides={"model": "gpt2"}, user_config_defaults={})
    tuned = load_experiment_config(cli_overrides={"model": "gpt2", "openai.concurrency": 8}, user_config_defaults={})
    assert "openai" not in pytorch.model_dump() and pytorch.config_hash() == tuned.config_hash()
    server = config()
    assert "pytorch" not in server.model_dump() and "openai" in server.model_dump(mode="json")
    assert server.config_hash() == config(**{"pytorch.batch_size": 8}).config_hash()
    assert server.config_hash() != config(**{"openai.concurrency": 8}).config_hash()
    assert server.config_hash() != config(model="other").config_hash()


# --- the request --------------------------------------------------------------------------------------------------

def test_greedy_request_sends_temperature_0_and_no_vllm_extension():
    assert request_body(config(max_output_tokens=7), "Hi") == {
        "model": "served-model", "prompt": "Hi", "max_tokens": 7, "stream": True,
        "stream_options": {"include_usage": True}, "temperature": 0.0}


def test_sampling_sends_its_settings_and_seed_and_ignore_eos_only_when_asked():
    body = request_body(config(**{"decoder.preset": "factual", "decoder.ignore_eos": True, "random_seed": 7}), "Hi")
    assert (body["temperature"], body["top_p"], body["seed"], body["ignore_eos"]) == (0.3, 0.9, 7, True)


def test_the_api_key_comes_only_from_the_variable_named(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    assert request_headers(config()) == {}
    monkeypatch.setenv("MY_KEY", "k-1")
    assert request_headers(config(**{"openai.api_key_env": "MY_KEY"})) == {"Authorization": "Bearer k-1"}


@pytest.mark.parametrize(("body", "text"), [
    (b'{"error": {"message": "model not found", "type": "x"}}', "model not found"),
    (b'{"detail": "Server is pinned to \'a\'"}', "Server is pinned to 'a'"),
    (b'{"object": "error", "message": "bad\\n  prompt"}', "bad prompt"),
    (b"<html>Bad Gateway</html>", "<html>Bad Gateway</html>"),
    (b"", "(no error text)"),
    (b"x" * 10_000, "x" * 500 + "..."),
])
def test_error_text_is_what_the_server_said(body, text):
    assert error_text(body) == text


def test_decoder_settings_the_api_cannot_carry_are_warned_about():
    assert decoder_warnings(config()) == []
    [(code, message)] = decoder_warnings(config(**{"decoder.preset": "standard", "decoder.repetition_penalty": 1.2}))
    assert code == "decoder_not_sent" and "decoder.top_k=50 and decoder.repetition_penalty=1.2 not sent" in message


# --- where the energy comes from ------------------------------------------------------------------------------------

def test_a_server_elsewhere_has_no_energy_and_says_why():
    remote = config(**{"openai.base_url": "http://192.0.2.10:8000/v1"})  # TEST-NET-1: never this machine
    problems: list[str] = []
    meter = server_meter(remote, problems)
    reading = meter.stop()
    assert problems == [] and meter.source == "none" and reading.energy_j is None
    assert reading.unavailable_reason.startswith("the server at http://192.0.2.10:8000/v1 is not on this machine; "
                                                 "energy of its devices cannot be read here")
    assert server_gpus(remote) == []


def test_a_server_elsewhere_cannot_be_measured_with_a_source_of_this_machine():
    problems: list[str] = []
    server_meter(config(**{"openai.base_url": "http://192.0.2.10:8000/v1", "energy.source": "cpu_estimate"}), problems)
    assert problems and problems[0].startswith("energy.source: cpu_estimate would measure this machine, but the server")


def test_named_gpus_are_measured_wherever_the_url_points(fake_gpus):
    remote = config(**{"openai.base_url": "http://vllm:8000/v1", "openai.gpus": ["GPU-bbbbbbbb"]})
    problems: list[str] = []
    meter = server_meter(remote, problems)
    try:
        meter.start()
        reading = meter.stop()
    finally:
        meter.close()
    assert problems == [] and reading.source == "nvml_counter"
    assert [d.device for d in reading.devices] == ["gpu1"]
    assert [g.uuid for g in server_gpus(remote)] == ["GPU-bbbbbbbb-2"]


def test_a_local_server_is_measured_on_every_visible_gpu_without_its_process(fake_gpus):
    problems: list[str] = []
    meter = server_meter(config(**{"openai.base_url": f"http://localhost:{_free_port()}/v1"}), problems)
    meter.close()
    assert problems == [] and meter.source == "nvml_counter"


def test_the_cpu_estimate_counts_the_process_listening_on_the_port():
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        problems: list[str] = []
        meter = server_meter(config(**{"openai.base_url": f"http://127.0.0.1:{port}/v1"}), problems)
    assert problems == [] and meter.source == "cpu_estimate"


def test_the_cpu_estimate_needs_the_servers_process():
    port = _free_port()
    problems: list[str] = []
    server_meter(config(**{"openai.base_url": f"http://127.0.0.1:{port}/v1"}), problems)
    assert problems == [f"energy: the CPU estimate counts the server's CPU time, but its process was not found: "
                        f"no process of this machine listens on port {port} (a server in a container or a VM listens "
                        "elsewhere); set openai.server_pid to the server's process id"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- the pytest plugin's view -----------------------------------------------------------------------------------------

NO_GPU = Machine(SourceStatus("nvml", False, "NVML Shared Library Not Found"), SourceStatus("rapl", False, "no RAPL"),
                 [], None)


def test_a_server_on_named_gpus_is_skipped_on_a_machine_without_them():
    reason = needs.missing(config(**{"openai.gpus": [0]}), NO_GPU)
    assert reason == "the server runs on GPUs (openai.gpus: [0]) but none is visible here: NVML Shared Library Not Found"


def test_pytorch_device_means_nothing_to_a_server():
    server = config(**{"pytorch.device": "cuda:3"})
    assert needs.missing(server, NO_GPU) is None and needs.runs_on_gpu(server, NO_GPU) is False
    assert needs.unmeasured(server, NO_GPU) == "energy would only be estimated from the server's CPU time " \
                                              "(no visible GPU; no RAPL)"
    remote = config(**{"openai.base_url": "http://192.0.2.10/v1"})
    assert needs.unmeasured(remote, NO_GPU) == "energy would not be measured: the server at http://192.0.2.10/v1 " \
                                              "is not on this machine"


# --- the summary -----------------------------------------------------------------------------------------------------

def test_the_summary_names_the_server_and_reports_per_request(capsys):
    result = make_result([make_repeat(0, energy_j=2.0)], config={
        "model": "m", "backend": "openai",
        "openai": {"base_url": "http://127.0.0.1:8000/v1", "concurrency": 4, "request_rate": 2.5}})
    print_result(result, [], None)
    out = capsys.readouterr().out
    assert out.splitlines()[0] == ("tiny  (openai server http://127.0.0.1:8000/v1, 10 requests, concurrency 4, "
                                   "2.5 requests/s)")
    assert "per request" in out and "ttft p50/p95" in out and "n/a (the server's own)" in out
