import pytest

from tests import processes


@pytest.fixture
def daphne(transactional_db, tmp_path):
    service = processes.start_daphne(tmp_path)
    yield service
    service.stop()
