from portal.identity.models import Role
from tests.conftest import sign_in


def test_openapi_document_describes_the_api(client):
    spec = client.get("/api/openapi.json").get_json()
    assert spec["openapi"].startswith("3.")
    for path in ("/api/me", "/api/sites", "/api/sites/{site_id}", "/api/sites/{site_id}/sync",
                 "/api/projects", "/api/projects/{project_id}"):
        assert path in spec["paths"], path


def test_me_reports_roles(client, make_user):
    _, email, password = make_user(Role.REVIEWER, name="Žydrūnė Ąžuolaitė")
    sign_in(client, email, password)
    me = client.get("/api/me").get_json()
    assert me["email"] == email and me["roles"] == ["reviewer"]
    assert me["name"] == "Žydrūnė Ąžuolaitė"


def test_api_errors_are_json_and_pages_are_html(client, make_user):
    _, email, password = make_user()
    sign_in(client, email, password)
    api = client.get("/api/projects/999")
    assert api.status_code == 404 and api.is_json
    page = client.get("/projects/999")
    assert page.status_code == 404 and "text/html" in page.content_type


def test_security_headers(client):
    headers = client.get("/login").headers
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
    assert "script-src 'self'" in headers["Content-Security-Policy"]
    assert headers["X-Content-Type-Options"] == "nosniff"
