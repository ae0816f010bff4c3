"""Register every module medssl configs may name (medssl, mmselfsup, mmseg)."""
import datetime
import warnings


def register_all_modules(init_default_scope: bool = True) -> None:
    """Import all modules so their registries are filled.

    Args:
        init_default_scope (bool): Set the default scope to ``medssl`` so
            unprefixed names in configs resolve through medssl's registries.
    """
    import mmseg.datasets  # noqa: F401
    import mmseg.engine  # noqa: F401
    import mmseg.evaluation  # noqa: F401
    import mmseg.models  # noqa: F401
    import mmseg.visualization  # noqa: F401
    import mmselfsup.datasets  # noqa: F401
    import mmselfsup.engine  # noqa: F401
    import mmselfsup.evaluation  # noqa: F401
    import mmselfsup.models  # noqa: F401
    import mmselfsup.visualization  # noqa: F401

    import medssl  # noqa: F401  (installs the mmcv shim first)
    import medssl.datasets  # noqa: F401
    import medssl.engine  # noqa: F401
    import medssl.evaluation  # noqa: F401
    import medssl.models  # noqa: F401
    # safe checkpoint reading + atomic checkpoint writing for mmengine
    from .checkpoint import install_checkpoint_io
    install_checkpoint_io()

    if not init_default_scope:
        return
    from mmengine import DefaultScope  # here: `import medssl` stays light
    never_created = DefaultScope.get_current_instance() is None \
        or not DefaultScope.check_instance_created('medssl')
    if never_created:
        DefaultScope.get_instance('medssl', scope_name='medssl')
        return
    current = DefaultScope.get_current_instance()
    if current.scope_name != 'medssl':
        warnings.warn('The current default scope '
                      f'"{current.scope_name}" is not "medssl", '
                      '`register_all_modules` will force the current '
                      'default scope to be "medssl".')
        new_name = f'medssl-{datetime.datetime.now()}'
        DefaultScope.get_instance(new_name, scope_name='medssl')
