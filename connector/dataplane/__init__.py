"""The provider data plane: access tokens for agreed transfers (``tokens``), kept pure so the
HTTP layer and the token store can be added and tested around it."""
