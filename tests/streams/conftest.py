import pytest

from tests.conftest import make_account, make_call


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")


@pytest.fixture
def call(transactional_db, campaign):
    return make_call(campaign)


@pytest.fixture
def globex_account(globex):
    return make_account(globex)
