"""Assertions shared by the API tests."""


def assert_error(response, status: int, code: str, *, fields: list[str] | None = None) -> dict:
    """The one error shape, with this status and code (and these fields, when given)."""
    assert response.status_code == status, (response.status_code, response.content[:500])
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}
    error = body["error"]
    assert error["code"] == code, error
    assert isinstance(error["message"], str) and error["message"]
    if fields is not None:
        assert sorted(error.get("fields", {})) == sorted(fields), error
    return error
