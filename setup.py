# Reads everything from settings.ini, as nbdev 2 projects do.
import shutil
from configparser import ConfigParser
from pathlib import Path
from setuptools import setup, find_packages
from setuptools.command.build_py import build_py

cfg = ConfigParser(delimiters=['='])
cfg.read('settings.ini', encoding='utf-8')
cfg = cfg['DEFAULT']

# Shipped with the package (a wheel has no clone around it): the YAML presets and the Fashion-MNIST sample, copied from
# configs/ and data/ (their only source) into triplet_ssl/assets/, where triplet_ssl.cli.asset and triplet_ssl.data find them.
ASSETS = {'configs': 'configs', 'data/fashion-mnist-sample': 'fashion-mnist-sample'}

class BuildWithAssets(build_py):
    def run(self):
        super().run()
        for src, dst in ASSETS.items():
            if not Path(src).is_dir(): raise FileNotFoundError(f"{src}/ is missing from the source tree (MANIFEST.in ships it in the sdist).")
            shutil.copytree(src, Path(self.build_lib, cfg['lib_name'], 'assets', dst), dirs_exist_ok=True)

# Optional extras, one per `<name>_requirements` key of settings.ini: pip install 'triplet-ssl[lightly]'
EXTRAS = {k.removesuffix('_requirements'): v.split() for k, v in cfg.items() if k.endswith('_requirements') and k != 'dev_requirements'}

setup(
    name=cfg['lib_name'], version=cfg['version'], description=cfg['description'],
    author=cfg['author'], author_email=cfg['author_email'], license='Apache-2.0',
    keywords=cfg['keywords'].split(), url=cfg['git_url'], project_urls={'Source': cfg['git_url']}, scripts=[],
    classifiers=['Programming Language :: Python :: 3', 'Topic :: Scientific/Engineering :: Artificial Intelligence'], python_requires=f">={cfg['min_python']}",
    packages=find_packages(include=[cfg['lib_name'], cfg['lib_name'] + '.*']),
    include_package_data=True, zip_safe=False, cmdclass={'build_py': BuildWithAssets},
    install_requires=cfg.get('requirements', '').split(),
    extras_require={'dev': cfg.get('dev_requirements', '').split() + [r for e in EXTRAS.values() for r in e], **EXTRAS},
    long_description=open('README.md', encoding='utf-8').read(), long_description_content_type='text/markdown',
    entry_points={'console_scripts': cfg.get('console_scripts', '').split(),
                  'nbdev': [f"{cfg['lib_name']}={cfg['lib_name']}._modidx:d"]},
)
