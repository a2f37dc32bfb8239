from tests.features.conftest import (
    load_sample,  # noqa: F401
    sample_btc_5m,  # noqa: F401
)
