"""The configuration of the commands that read videos: ``calibrate``, ``tune``, ``analyze`` (one video or an
archive)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from detectord.detection import MainPersonConfig, Precision, PrecisionError, family

from .common import ConfigError, FrameConfig, ModelConfig


@dataclass(frozen=True)
class CalibrateConfig:
    """``detectord calibrate``: int8-static quantisation ranges from real frames of a video."""

    video: Path
    out: Path
    frames: int = 64
    """Frames to calibrate on, spread evenly over the video."""
    frame: FrameConfig = field(default_factory=FrameConfig)
    model: ModelConfig = field(default_factory=ModelConfig)

    def __post_init__(self) -> None:
        if not 1 <= self.frames <= 10000:
            raise ConfigError(f"frames must be between 1 and 10000, got {self.frames}")
        if not self.out.parent.is_dir():
            raise ConfigError(f"out: directory {str(self.out.parent)!r} does not exist")


@dataclass(frozen=True)
class TuneConfig:
    """``detectord tune``: every precision scheme on the user's own footage; the fastest faithful one."""

    video: Path
    out: Path = Path("tune.toml")
    """The ``[model]`` settings to include after the daemon's own configuration."""
    frames: int = 16
    """Frames measured, spread over the video."""
    calibration_frames: int = 32
    """Frames int8-static is calibrated on (CPU)."""
    schemes: str = ""
    """Comma-separated schemes to measure (fp32, the reference, always is); empty: every one this device runs."""
    frame: FrameConfig = field(default_factory=FrameConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    main_person: MainPersonConfig = field(default_factory=MainPersonConfig)

    def __post_init__(self) -> None:
        for scheme in self.scheme_list:
            try:
                if Precision.parse(scheme).auto:
                    raise ConfigError("schemes: auto is what tune decides; name schemes")
            except PrecisionError as exc:
                raise ConfigError(f"schemes: {exc}") from None
        if not 2 <= self.frames <= 1000:
            raise ConfigError(f"frames must be between 2 and 1000, got {self.frames}")
        if not 1 <= self.calibration_frames <= 10000:
            raise ConfigError(f"calibration_frames must be between 1 and 10000, got {self.calibration_frames}")
        if not self.out.parent.is_dir():
            raise ConfigError(f"out: directory {str(self.out.parent)!r} does not exist")
        if self.out.suffix != ".toml":
            raise ConfigError(f"out: write a .toml file, not {self.out.name!r}")
        if not family(self.model.name).precisions:
            raise ConfigError(f"model.name: {self.model.name} runs in one precision only; there is nothing to tune")

    @property
    def scheme_list(self) -> list[str]:
        return [scheme.strip() for scheme in self.schemes.split(",") if scheme.strip()]


@dataclass(frozen=True)
class AnalysisSettings:
    """How every frame of a video is analysed; ``AnalyzeConfig`` (one video) and ``ArchiveConfig`` (many) add
    where."""

    batch: int = 4
    """Frames per inference call."""
    max_frames: int | None = None
    """Analyse only the first this many frames (None: all)."""
    skip_still: bool = False
    """Where nothing moved since the last frame the model ran on, reuse its detections (marked) instead of
    running the model: every frame is still written once."""
    frame: FrameConfig = field(default_factory=FrameConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    main_person: MainPersonConfig = field(default_factory=MainPersonConfig)

    def __post_init__(self) -> None:
        if not 1 <= self.batch <= 64:
            raise ConfigError(f"batch must be between 1 and 64, got {self.batch}")
        if self.max_frames is not None and self.max_frames < 1:
            raise ConfigError(f"max_frames must be at least 1, got {self.max_frames}")


@dataclass(frozen=True, kw_only=True)
class AnalyzeConfig(AnalysisSettings):
    """``detectord analyze VIDEO --out JSONL``: one video, every frame, JSONL and an annotated video."""

    video: Path
    out: Path
    annotated: Path | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        for key, path in (("out", self.out), ("annotated", self.annotated)):
            if path is not None and not path.parent.is_dir():
                raise ConfigError(f"{key}: directory {str(path.parent)!r} does not exist")
        if self.annotated is not None and self.annotated.suffix.lower() != ".mp4":
            raise ConfigError(f"annotated: write an .mp4 file, not {self.annotated.name!r}")


@dataclass(frozen=True, kw_only=True)
class ArchiveConfig(AnalysisSettings):
    """``detectord analyze INPUT… --out-dir DIR``: many videos, each analysed as ``AnalyzeConfig`` would, with a
    manifest that makes a second run skip what is done (``daemon/archive``)."""

    inputs: tuple[str, ...] = ()
    """Videos, directories (every video below) and globs."""
    inputs_file: Path | None = None
    """More inputs, one per line (``--inputs LIST``)."""
    out_dir: Path
    annotated: bool = False
    """Also write each video's annotated MP4 beside its JSONL."""
    force: bool = False
    """Analyse again the videos the manifest says are done."""
    jobs: int = 0
    """Videos analysed at once on this machine; 0: from its cores (``archive.local.plan``)."""
    ray: str = ""
    """Run on the Ray cluster at this address (``auto``: ``RAY_ADDRESS``, or the cluster started on this
    machine); empty: on this machine."""
    chunk_frames: int | None = None
    """With ``ray``: cut videos longer than this many frames into equal chunks no longer (0: a task per video;
    None: from the job's frames and the cluster's CPUs, ``archive.cluster.chunk_size``)."""
    ray_node_ip: str = ""
    """With ``ray``: this machine's address in the cluster, where Ray cannot guess it (several interfaces)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.inputs and self.inputs_file is None:
            raise ConfigError("no input: name videos, directories or globs, or --inputs LIST")
        if self.out_dir.exists() and not self.out_dir.is_dir():
            raise ConfigError(f"out_dir: {str(self.out_dir)!r} is not a directory")
        if not 0 <= self.jobs <= 256:
            raise ConfigError(f"jobs must be between 0 (from the cores) and 256, got {self.jobs}")
        if self.chunk_frames is not None and self.chunk_frames < 0:
            raise ConfigError(f"chunk_frames must be 0 (a task per video) or more, got {self.chunk_frames}")
        if (self.chunk_frames is not None or self.ray_node_ip) and not self.ray:
            raise ConfigError("--chunk-frames and --ray-node-ip are for a Ray cluster: add --ray ADDRESS")
