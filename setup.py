from setuptools import find_packages, setup


def read_version() -> str:
    scope: dict = {}
    with open('medssl/version.py') as f:
        exec(f.read(), scope)
    return scope['__version__']


setup(
    name='medssl',
    version=read_version(),
    description='Self-supervised pretraining on medical CT slices, OpenMMLab style',
    packages=find_packages(include=['medssl', 'medssl.*']),
    # shipped volume-level splits (BTCV 13-organ 24/6)
    package_data={'medssl.datasets': ['splits/*.json']},
    include_package_data=True,
    python_requires='>=3.9',
    # Exact pins live in requirements.txt; here only what medssl imports.
    install_requires=['torch', 'torchvision', 'mmengine', 'mmcv-lite',
                      'mmselfsup', 'mmsegmentation', 'numpy', 'nibabel'],
    zip_safe=False,
)
