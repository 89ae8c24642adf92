"""recsearch: neural-architecture search for CTR models on TorchRec.

Install with `bash tools/install.sh` (or `make install`): it pins torch, fbgemm-gpu(-cpu)
and torchrec together, which plain `pip install .` cannot do safely.
"""

from pathlib import Path

from setuptools import find_packages, setup

here = Path(__file__).parent
requirements = [
    line.split("#")[0].strip()
    for line in (here / "requirements.txt").read_text().splitlines()
    if line.split("#")[0].strip()
]

setup(
    name="recsearch",
    version="0.1.0",
    description="Search, train and ship CTR recommender models on TorchRec",
    python_requires=">=3.10",
    packages=find_packages(include=["recsearch", "recsearch.*"]),
    install_requires=requirements,
    entry_points={"console_scripts": ["recsearch=recsearch.cli:main"]},
)
