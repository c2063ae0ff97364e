"""One distribution, ``detectord``, whose top-level folders import as ``detectord.*``.

The repository keeps ``detection/``, ``ipc/``, ``daemon/`` and ``web/`` at its
top level (the folder tells the architecture), but installs them under one
namespace so that nothing generic such as ``daemon`` or ``web`` lands in
site-packages. ``detectord`` itself is an implicit namespace package.
"""

from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).resolve().parent

TOP_LEVEL = ("contract", "detection", "events", "ipc", "daemon", "web")


def _packages() -> tuple[list[str], dict[str, str]]:
    packages: list[str] = []
    package_dir: dict[str, str] = {}
    for folder in TOP_LEVEL:
        if not (HERE / folder / "__init__.py").exists():
            continue
        package_dir[f"detectord.{folder}"] = folder
        packages.append(f"detectord.{folder}")
        for sub in find_packages(where=folder):
            packages.append(f"detectord.{folder}.{sub}")
    return packages, package_dir


PACKAGES, PACKAGE_DIR = _packages()

setup(
    name="detectord",
    version="0.1.0",
    description="Real-time video object detection daemon: Faster R-CNN, shared-memory stages, MQTT, live web viewer",
    python_requires=">=3.11",
    packages=PACKAGES,
    package_dir=PACKAGE_DIR,
    install_requires=[
        "torch",
        "torchvision",
        "torchao>=0.18,<0.19",
        "opencv-contrib-python-headless>=5.0,<6",
        "numpy",
        "gmqtt",
        "tornado",
        "pycocotools",
        "psutil",
        "prometheus_client>=0.20",
        "protobuf>=4.21",  # ssdlite-people reads its TensorFlow graph (detection/ssdlite/graphdef.py)
    ],
    extras_require={
        "test": [
            "pytest>=8",
            "pytest-timeout>=2.3",
            "hypothesis>=6.100",
            "ruff==0.17.5",
            "mypy==2.4.1",
            "types-psutil==7.2.2.20261111",
            "selenium==4.51.0",
            "nbclient",
            "nbformat",
            "ipykernel",
            "matplotlib",
        ],
        # detectord analyze --ray: the archive job on a Ray cluster (daemon/archive/cluster.py)
        "cluster": ["ray==2.60.0"],
    },
    data_files=[
        (
            "share/detectord/systemd",
            [
                "systemd/detector.service",
                "systemd/detector@.service",
                "systemd/detector-web.service",
                "systemd/detector.toml.example",
            ],
        )
    ],
    package_data={"detectord.web": ["static/*"]},
    entry_points={
        "console_scripts": [
            "detectord = detectord.daemon.cli.main:entry_point",
            "detector-web = detectord.web.cli:entry_point",
        ]
    },
)
