"""Generation and load settings: one table of parameter specs that validates every input.

The same specs build the sidebar form, validate `key=value` flags, `/set` commands and config
values, and turn into `GenerationConfig` keyword arguments. Any other GenerationConfig field is
accepted too (tui.engine.generation_config), as `transformers chat` takes it. No torch import.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tui.engine import generation_config


class SettingsError(ValueError):
    """An invalid setting: the message says which key and why, ready to show a user."""


@dataclass(frozen=True)
class ParamSpec:
    name: str  # the GenerationConfig name
    type: type  # int, float or bool
    default: Any
    help: str
    minimum: float | None = None
    maximum: float | None = None
    min_exclusive: bool = False
    optional: bool = False  # None ("off") is allowed
    sampling_only: bool = False  # only meaningful with do_sample=True
    remote_only: bool = False  # an OpenAI request field, not a GenerationConfig one

    def range_text(self) -> str:
        if self.type is bool:
            return "true/false"
        lo = "" if self.minimum is None else f"{'>' if self.min_exclusive else '≥'} {self.minimum:g}"
        hi = "" if self.maximum is None else f"≤ {self.maximum:g}"
        text = ", ".join(part for part in (lo, hi) if part)
        if self.optional:
            text = f"{text} or none" if text else "none"
        return text

    def parse(self, raw: Any) -> Any:
        """Turn a string (or a TOML/JSON value) into a valid value, or raise SettingsError."""
        name = self.name
        if isinstance(raw, str):
            text = raw.strip()
            if self.optional and text.lower() in ("", "none", "null", "off"):
                return None
            if text.lower() in ("none", "null"):  # as in transformers: not set here, the default applies
                return self.default
            if self.type is bool:
                lowered = text.lower()
                if lowered in ("true", "1", "yes", "on"):
                    return True
                if lowered in ("false", "0", "no", "off"):
                    return False
                raise SettingsError(f"{name}: expected true or false, got {raw!r}")
            if self.type is int:
                try:
                    value: Any = int(text)
                except ValueError:
                    raise SettingsError(f"{name}: expected a whole number, got {raw!r}") from None
            else:
                try:
                    value = float(text)
                except ValueError:
                    raise SettingsError(f"{name}: expected a number, got {raw!r}") from None
        else:
            if raw is None:  # not set here: the default applies
                return None if self.optional else self.default
            if self.type is bool:
                if isinstance(raw, bool):
                    return raw
                raise SettingsError(f"{name}: expected true or false, got {raw!r}")
            if isinstance(raw, bool) or not isinstance(raw, (int, float)):
                raise SettingsError(f"{name}: expected a number, got {raw!r}")
            if self.type is int:
                if isinstance(raw, float) and not (math.isfinite(raw) and raw.is_integer()):
                    raise SettingsError(f"{name}: expected a whole number, got {raw!r}")
                value = int(raw)
            else:
                value = float(raw)
        if isinstance(value, float) and not math.isfinite(value):
            raise SettingsError(f"{name}: must be a finite number, got {raw!r}")
        self._check_range(value)
        return value

    def _check_range(self, value: float) -> None:
        lo, hi = self.minimum, self.maximum
        if lo is not None and (value <= lo if self.min_exclusive else value < lo):
            raise SettingsError(f"{self.name}: {value:g} is out of range ({self.range_text()})")
        if hi is not None and value > hi:
            raise SettingsError(f"{self.name}: {value:g} is out of range ({self.range_text()})")


# The one table. Names and meaning are GenerationConfig's; defaults are chat-friendly values.
PARAM_SPECS: tuple[ParamSpec, ...] = (
    ParamSpec("max_new_tokens", int, 512, "Most tokens to generate in one reply.", 1, 1_000_000),
    ParamSpec("do_sample", bool, True, "Sample the next token; off means greedy (deterministic)."),
    ParamSpec(
        "temperature",
        float,
        0.7,
        "Randomness of sampling: lower is more focused.",
        0.0,
        100.0,
        min_exclusive=True,
        sampling_only=True,
    ),
    ParamSpec(
        "top_p",
        float,
        0.9,
        "Nucleus sampling: keep the smallest set of tokens with this much probability.",
        0.0,
        1.0,
        min_exclusive=True,
        sampling_only=True,
    ),
    ParamSpec(
        "top_k", int, 50, "Keep only the k most likely tokens (0 turns it off).", 0, 1_000_000, sampling_only=True
    ),
    ParamSpec(
        "min_p",
        float,
        0.0,
        "Drop tokens less likely than min_p × the top token's probability (0 = off).",
        0.0,
        1.0,
        sampling_only=True,
    ),
    ParamSpec(
        "typical_p",
        float,
        1.0,
        "Locally typical sampling mass (1 = off).",
        0.0,
        1.0,
        min_exclusive=True,
        sampling_only=True,
    ),
    ParamSpec(
        "repetition_penalty",
        float,
        1.0,
        "Penalty for tokens already in the text (1 = off).",
        0.0,
        10.0,
        min_exclusive=True,
    ),
    ParamSpec("no_repeat_ngram_size", int, 0, "Never repeat an n-gram of this size (0 = off).", 0, 1000),
    ParamSpec("seed", int, None, "Random seed for reproducible sampling (none = random).", 0, 2**32 - 1, optional=True),
    # Off by default: the model checks every guess, but checking several tokens in one forward pass
    # rounds differently from one at a time, and at a near tie greedy output can change (seen on
    # SmolLM2). Opt in for up to 3.6x on replies that repeat earlier text.
    ParamSpec(
        "prompt_lookup_num_tokens",
        int,
        0,
        "Prompt lookup: guess up to this many next tokens from earlier text and let the model check "
        "them; much faster when a reply repeats the conversation (adaptive; 0 = off, 10 is good).",
        0,
        64,
    ),
    # OpenAI's penalties, sent to remote servers; transformers' own is repetition_penalty.
    ParamSpec(
        "frequency_penalty",
        float,
        0.0,
        "Remote servers only: penalise tokens by how often they appeared "
        "(0 = off; in-process, use repetition_penalty).",
        -2.0,
        2.0,
        remote_only=True,
    ),
    ParamSpec(
        "presence_penalty",
        float,
        0.0,
        "Remote servers only: penalise tokens that appeared at all (0 = off; in-process, use repetition_penalty).",
        -2.0,
        2.0,
        remote_only=True,
    ),
)
SPECS_BY_NAME: dict[str, ParamSpec] = {spec.name: spec for spec in PARAM_SPECS}
# The sidebar's form: the settings every backend honours.
FORM_SPECS: tuple[ParamSpec, ...] = tuple(spec for spec in PARAM_SPECS if not spec.remote_only)


@dataclass
class GenerationSettings:
    """The generation values in use. Every value held here has passed its spec."""

    values: dict[str, Any] = field(default_factory=lambda: {s.name: s.default for s in PARAM_SPECS})

    def __getattr__(self, name: str) -> Any:
        values = self.__dict__.get("values", {})
        if name in values:
            return values[name]
        raise AttributeError(name)

    def copy(self) -> GenerationSettings:
        return GenerationSettings(dict(self.values))

    def with_updates(self, updates: Mapping[str, Any]) -> GenerationSettings:
        """A new settings object with `updates` validated and applied (all or nothing). Fields
        beyond chatui's specs are checked together by transformers' GenerationConfig validation."""
        parsed = parse_updates(updates)
        merged = dict(self.values)
        merged.update(parsed)
        extras = {key: value for key, value in merged.items() if key not in SPECS_BY_NAME}
        if extras:
            try:
                generation_config.validate(GenerationSettings(merged).generate_kwargs())
            except generation_config.GenerationConfigError as exc:
                raise SettingsError(str(exc)) from None
        return GenerationSettings(merged)

    def without(self, key: str) -> GenerationSettings:
        """Back to the default for `key` (chatui's, or the model's own for other fields)."""
        merged = dict(self.values)
        spec = SPECS_BY_NAME.get(key)
        if spec is not None:
            merged[key] = spec.default
        else:
            merged.pop(key, None)
        return GenerationSettings(merged)

    def changed(self) -> dict[str, Any]:
        """Every setting that is not chatui's default (fields without a form field included)."""
        return {
            key: value
            for key, value in self.values.items()
            if key not in SPECS_BY_NAME or value != SPECS_BY_NAME[key].default
        }

    @property
    def streams(self) -> bool:
        """Whether the reply can stream token by token (beam search cannot)."""
        return int(self.values.get("num_beams") or 1) <= 1

    def as_dict(self) -> dict[str, Any]:
        return dict(self.values)

    def generate_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for `model.generate` / `GenerationConfig` (seed is handled apart)."""
        kwargs: dict[str, Any] = {}
        sampling = bool(self.values["do_sample"])
        for spec in PARAM_SPECS:
            if spec.name == "seed" or spec.remote_only:
                continue
            if spec.sampling_only and not sampling:
                continue
            value = self.values[spec.name]
            if spec.name in ("min_p", "prompt_lookup_num_tokens") and not value:
                continue  # GenerationConfig's "off" is None
            kwargs[spec.name] = value
        kwargs.update((key, value) for key, value in self.values.items() if key not in SPECS_BY_NAME)
        return kwargs

    def describe(self) -> str:
        return " ".join(f"{k}={format_value(v)}" for k, v in self.values.items())


def format_value(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def parse_updates(updates: Mapping[str, Any]) -> dict[str, Any]:
    """Validate a mapping of names to values (strings from `key=value`, or typed values from a
    file); raise SettingsError naming the first bad one. Values of chatui's specs pass their
    spec; other GenerationConfig fields are typed as `transformers chat` types them."""
    parsed: dict[str, Any] = {}
    for key, raw in updates.items():
        spec = SPECS_BY_NAME.get(key)
        try:
            if spec is not None:
                parsed[key] = spec.parse(raw)
                continue
            generation_config.check_name(key, SPECS_BY_NAME)
            value = generation_config.parse_flag_value(raw) if isinstance(raw, str) else raw
            parsed[key] = generation_config.check_json_value(key, value)
        except generation_config.GenerationConfigError as exc:
            raise SettingsError(str(exc) if str(exc).startswith((key, "unknown")) else f"{key}: {exc}") from None
    return parsed


def parse_key_values(items: Iterable[str]) -> dict[str, Any]:
    """Parse `key=value` words (the `transformers chat` flag format) into validated values."""
    raw: dict[str, str] = {}
    for item in items:
        if "=" not in item:
            raise SettingsError(f"expected key=value, got {item!r}")
        key, _, value = item.partition("=")
        key = key.strip().replace("-", "_")
        if not key:
            raise SettingsError(f"expected key=value, got {item!r}")
        raw[key] = value
    return parse_updates(raw)


# Built-in presets: named sets of generation values (user presets live in config.toml).
BUILTIN_PRESETS: dict[str, dict[str, Any]] = {
    "precise": {"do_sample": False, "repetition_penalty": 1.1, "no_repeat_ngram_size": 0},
    "balanced": {
        "do_sample": True,
        "temperature": 0.7,
        "top_p": 0.9,
        "top_k": 50,
        "min_p": 0.0,
        "typical_p": 1.0,
        "repetition_penalty": 1.0,
    },
    "creative": {
        "do_sample": True,
        "temperature": 1.0,
        "top_p": 0.95,
        "top_k": 0,
        "min_p": 0.05,
        "typical_p": 1.0,
        "repetition_penalty": 1.05,
    },
}


# ---------------------------------------------------------------------------------------------
# Load settings: how the model is loaded (changing them reloads the model).

DTYPES = ("auto", "float32", "bfloat16", "float16")
DEVICES = ("auto", "cpu", "cuda", "mps")
# As `transformers serve` names them; "8bit" and "4bit" (chatui's older names) still mean bitsandbytes.
QUANTIZATIONS = ("none", "int4", "bnb-8bit", "bnb-4bit")
QUANTIZATION_ALIASES = {"8bit": "bnb-8bit", "4bit": "bnb-4bit"}
ATTENTION_IMPLEMENTATIONS = ("auto", "sdpa", "eager", "flash_attention_2")
# The load options with a fixed set of choices (the sidebar's dropdowns, the flags' choices).
LOAD_CHOICES: dict[str, tuple[str, ...]] = {
    "dtype": DTYPES,
    "device": DEVICES,
    "quantization": QUANTIZATIONS,
    "attn_implementation": ATTENTION_IMPLEMENTATIONS,
}
# The load options a user sets, in the command line, config.toml, the sidebar and a saved
# conversation (the two safety switches are command-line only and never restored from a file).
LOAD_FIELDS = ("model", *LOAD_CHOICES, "draft_model", "compile", "endpoint", "api_key_env")


@dataclass(frozen=True)
class LoadSettings:
    model: str | None = None  # None: the bundled default model
    dtype: str = "auto"
    device: str = "auto"
    quantization: str = "none"
    attn_implementation: str = "auto"
    trust_remote_code: bool = False
    allow_pickle: bool = False  # load pickle `.bin` weights (off: safetensors only)
    draft_model: str | None = None  # a small model that drafts tokens for assisted decoding
    compile: bool = False  # static KV cache + torch.compile, compiled in the background after load
    endpoint: str | None = None  # an OpenAI-compatible server (its URL) instead of the in-process model
    api_key_env: str | None = None  # the environment variable that holds the server's API key (not the key)

    def __post_init__(self) -> None:
        if self.quantization in QUANTIZATION_ALIASES:
            object.__setattr__(self, "quantization", QUANTIZATION_ALIASES[self.quantization])
        if not isinstance(self.compile, bool):
            raise SettingsError(f"compile: {self.compile!r} is not true or false")
        for name, allowed in LOAD_CHOICES.items():
            value = getattr(self, name)
            if value not in allowed:
                raise SettingsError(f"{name}: {value!r} is not one of {', '.join(allowed)}")

    def replace(self, **changes: Any) -> LoadSettings:
        data = {k: getattr(self, k) for k in self.__dataclass_fields__}
        data.update(changes)
        return LoadSettings(**data)

    def as_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def describe_load_difference(wanted: LoadSettings, current: LoadSettings) -> str:
    """What `wanted` loads differently from `current`, for a user: "model x, dtype bfloat16
    (now auto), quantization 8bit (now none)"; "" when they load the same."""
    parts = []
    for name in LOAD_FIELDS:
        new, old = getattr(wanted, name), getattr(current, name)
        if new != old:
            label = name.replace("_implementation", "").replace("_", " ")
            parts.append(f"{label} {format_value(new)} (now {format_value(old)})")
    return ", ".join(parts)
