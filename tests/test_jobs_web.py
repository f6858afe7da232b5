"""The Jobs pages and the JSON API without Slurm: forms, previews, refusals, who sees what."""
from __future__ import annotations

from portal.extensions import db
from portal.jobs.models import SubmittedJob
from portal.projects.models import ProjectRole
from tests.conftest import csrf_token_from, signed_in_client
from tests.job_world import add_member_to, stored_job


def form_data(page: str, world, **values) -> dict:
    data = {"csrf_token": csrf_token_from(page), "project": world.project_id,
            "partition": world.partition_ids["cpu"], "job_name": "demo", "action": "preview"}
    data.update({f"p_{k}" if k not in ("action", "partition", "job_name") else k: v for k, v in values.items()})
    return data


def test_the_form_shows_limits_beside_fields_and_previews_the_exact_script(app, job_world):
    client = signed_in_client(app, job_world.member)
    index = client.get("/jobs/").get_data(as_text=True)
    assert "Plain job (your command)" in index and "/jobs/new/mpi" in index
    page = client.get("/jobs/new/mpi").get_data(as_text=True)
    assert "MaxTime 60 min" in page and "MaxNodes 1" in page and "Żółć projekt" in page
    response = client.post("/jobs/new/mpi", data=form_data(page, job_world, ntasks="2", time="20"))
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "#SBATCH --ntasks=2" in html and "#SBATCH --time=20" in html
    assert "Largest possible cost: 0.67 core-hours" in html
    assert "the grant still allows 100 core-hours on this pool" in html and "Slurm account jobs_test_cpu" in html
    # No Slurm in this test: the ledger stands in, and the page says so.
    assert "Slurm did not answer" in html
    assert "Everything checks out" in html


def test_over_the_limit_the_message_stands_next_to_the_field_and_nothing_is_submitted(app, job_world):
    client = signed_in_client(app, job_world.member)
    page = client.get("/jobs/new/serial").get_data(as_text=True)
    data = form_data(page, job_world, time="90", action="submit")
    data["partition"] = job_world.partition_ids["debug"]
    html = client.post("/jobs/new/serial", data=data).get_data(as_text=True)
    assert "--time 90 min exceeds partition debug&#39;s MaxTime of 10 min" in html
    assert 'class="field-error"' in html
    with app.app_context():
        assert db.session.query(SubmittedJob).count() == 0


def test_hostile_form_values_are_refused_at_the_field(app, job_world):
    client = signed_in_client(app, job_world.member)
    page = client.get("/jobs/new/array").get_data(as_text=True)
    html = client.post("/jobs/new/array", data=form_data(page, job_world, inputs="x\n#SBATCH --uid=0")).get_data(as_text=True)
    assert "inputs: line breaks and control characters are not allowed" in html
    assert "--uid=0" not in html.split("</form>")[-1]


def test_an_outsider_cannot_choose_the_project_or_see_its_jobs(app, job_world):
    job_id = stored_job(app, job_world, "999999")
    client = signed_in_client(app, job_world.outsider)
    page = client.get("/jobs/new/serial").get_data(as_text=True)
    assert "Żółć projekt" not in page
    data = form_data(page, job_world, action="submit")
    html = client.post("/jobs/new/serial", data=data).get_data(as_text=True)
    assert "Choose one of your projects and a partition." in html
    assert client.get(f"/jobs/{job_id}").status_code == 404
    assert client.post(f"/jobs/{job_id}/cancel", data={"csrf_token": csrf_token_from(page)}).status_code == 404
    assert "999999" not in client.get("/jobs/").get_data(as_text=True)
    assert client.get(f"/api/jobs/{job_id}").status_code == 404
    assert client.get("/api/jobs").get_json() == []
    response = client.post("/api/jobs", json={"template": "serial", "project_id": job_world.project_id,
                                              "partition_id": job_world.partition_ids["cpu"]},
                           headers={"X-CSRFToken": csrf_token_from(page)})
    assert response.status_code == 404
    # A member sees it; a plain member may not cancel someone else's job, the PI may.
    member = signed_in_client(app, job_world.member)
    assert "999999" in member.get(f"/jobs/{job_id}").get_data(as_text=True)


def test_api_lists_templates_and_previews_with_numbers(app, job_world):
    client = signed_in_client(app, job_world.member)
    templates = client.get("/api/jobs/templates").get_json()
    mpi = next(t for t in templates if t["name"] == "mpi")
    assert {p["name"]: p["feeds"] for p in mpi["params"]} == {
        "time": "--time", "nodes": "--nodes", "ntasks": "--ntasks", "per_node": "--ntasks-per-node",
        "exclusive": "--exclusive", "program": "var", "setup": "var", "workdir": "--chdir", "output": "--output",
        "mail": "--mail-type", "after": "--dependency", "qos": "--qos", "constraint": "--constraint"}
    token = csrf_token_from(client.get("/jobs/").get_data(as_text=True))
    body = {"template": "mpi", "project_id": job_world.project_id, "partition_id": job_world.partition_ids["debug"],
            "values": {"ntasks": 2, "time": "90"}}
    preview = client.post("/api/jobs/preview", json=body, headers={"X-CSRFToken": token}).get_json()
    assert preview["ok"] is False
    assert preview["errors"]["time"] == ["--time 90 min exceeds partition debug's MaxTime of 10 min"]
    assert preview["cost_minutes"] == 180 and preview["remaining_minutes"] == 6000
    refused = client.post("/api/jobs", json=body, headers={"X-CSRFToken": token})
    assert refused.status_code == 422
    assert refused.get_json()["errors"]["time"] == ["--time 90 min exceeds partition debug's MaxTime of 10 min"]


def test_staff_see_broken_templates_with_file_and_line(app, job_world, make_user, tmp_path, monkeypatch):
    from portal.identity.models import Role

    (tmp_path / "broken.json").write_text('{\n "title": "x",,\n}\n')
    monkeypatch.setitem(app.config, "JOB_TEMPLATES_DIR", str(tmp_path))
    staff = make_user(Role.STAFF)
    html = signed_in_client(app, staff).get("/jobs/templates/problems").get_data(as_text=True)
    assert "broken.json" in html and "<td>2</td>" in html and "10 templates loaded" in html
    assert signed_in_client(app, job_world.member).get("/jobs/templates/problems").status_code == 403


def test_only_submitter_pi_and_staff_may_cancel(app, job_world, make_user):
    from portal.identity.models import Role

    other = make_user(Role.MEMBER)
    add_member_to(app, job_world, other[0], ProjectRole.MEMBER)
    job_id = stored_job(app, job_world, "4242")
    client = signed_in_client(app, other)
    token = csrf_token_from(client.get("/jobs/").get_data(as_text=True))
    assert client.post(f"/jobs/{job_id}/cancel", data={"csrf_token": token}).status_code == 403
    assert client.post(f"/api/jobs/{job_id}/cancel", headers={"X-CSRFToken": token}).status_code == 403


def test_output_is_read_only_from_regular_files_under_the_root_never_through_links(app, job_world, tmp_path):
    from portal.jobs.output import output_tails

    root = tmp_path / "jobs"
    (root / "jobtester").mkdir(parents=True)
    secret = tmp_path / "secret"
    secret.write_text("portal-only secret\n")
    (root / "jobtester" / "slurm-77.out").write_text("line 1\n" * 5000 + "last line\n")
    (root / "jobtester" / "slurm-78.out").symlink_to(secret)
    (root / "jobtester" / "slurm-770.out").write_text("another job\n")
    with app.app_context():
        job = SubmittedJob(slurm_job_id="77", unix_user="jobtester", workdir=str(root / "jobtester"))
        tails = output_tails(job)
        assert [tail.file for tail in tails] == ["slurm-77.out"]
        assert tails[0].text.endswith("last line\n") and len(tails[0].text) <= 16 * 1024
        assert output_tails(SubmittedJob(slurm_job_id="78", unix_user="jobtester", workdir=str(root / "jobtester"))) == []
        # The user's folder swapped for a link to somewhere else: nothing is read.
        (root / "jobtester").rename(root / "moved")
        (root / "jobtester").symlink_to(root / "moved")
        assert output_tails(job) == []
        # A stored folder outside the configured root is never read.
        assert output_tails(SubmittedJob(slurm_job_id="77", unix_user="moved", workdir=str(tmp_path / "x" / "moved"))) == []


def test_a_misspelt_parameter_is_refused_in_the_api_and_the_cli(app, job_world):
    client = signed_in_client(app, job_world.member)
    token = csrf_token_from(client.get("/jobs/").get_data(as_text=True))
    body = {"template": "serial", "project_id": job_world.project_id, "partition_id": job_world.partition_ids["cpu"],
            "values": {"tme": "600"}}
    refused = client.post("/api/jobs", json=body, headers={"X-CSRFToken": token})
    assert refused.status_code == 422
    message = ("unknown parameter 'tme'; this template takes: time, mem, cpus, command, label, work, workdir, output,"
               " mail, after, qos, constraint")
    assert refused.get_json()["errors"] == {"tme": [message]}
    with app.app_context():
        code = job_world.project().code
    result = app.test_cli_runner().invoke(args=["jobs", "render", "serial", "--email", job_world.member[1], "--project",
                                                code, "--partition", "cpu", "--set", "tme=600"])
    assert result.exit_code == 1 and f"tme: {message}" in result.output


def test_the_users_command_is_a_text_area_and_previews_quoted_after_the_header(app, job_world):
    client = signed_in_client(app, job_world.member)
    page = client.get("/jobs/new/serial").get_data(as_text=True)
    assert '<textarea' in page and 'name="p_command"' in page
    command = 'for f in *.txt; do\n  echo "$f: $(wc -l < "$f")"\ndone\n#SBATCH --uid=0\n'
    html = client.post("/jobs/new/serial", data=form_data(page, job_world, command=command.replace("\n", "\r\n"),
                                                          time="3")).get_data(as_text=True)
    assert "commands=&#39;for f in *.txt; do\n  echo &#34;$f: $(wc -l &lt; &#34;$f&#34;)&#34;\ndone\n#SBATCH --uid=0\n&#39;" in html
    assert html.split('id="script-preview"')[1].count("#SBATCH --uid=0") == 1  # inside the quoted word only
