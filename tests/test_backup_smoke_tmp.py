import subprocess
from helpers import sscp_ops_cmd

def test_smoke(backup_setup):
    r = subprocess.run(sscp_ops_cmd("backup", "run", "--config.file", str(backup_setup.config)), capture_output=True, text=True, timeout=120)
    print(r.stdout, r.stderr)
    r = subprocess.run(sscp_ops_cmd("backup", "offline-confirm", "platform", "--config.file", str(backup_setup.config)), capture_output=True, text=True, timeout=120)
    print(r.stdout, r.stderr)
    r = subprocess.run(sscp_ops_cmd("backup", "verify", "--config.file", str(backup_setup.config)), capture_output=True, text=True, timeout=120)
    print(r.stdout, r.stderr)
    r = subprocess.run(sscp_ops_cmd("backup", "drill", "--config.file", str(backup_setup.config)), capture_output=True, text=True, timeout=120)
    print(r.stdout, r.stderr)
    import json, glob
    m = glob.glob(str(backup_setup.locations["a"] / "platform/*/manifest.json"))
    print(open(m[0]).read()[:3000])
    assert 0
