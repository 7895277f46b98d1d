"""Helpers shared by the test modules: constants, servers, fakes. Test modules import from here,
never from one another; fixtures live in the ``conftest.py`` files."""
