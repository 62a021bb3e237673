//! The deployment example (`examples/deploy`) and the configuration it
//! relies on: the manifests are valid Kubernetes objects (the API's own
//! schemas, offline, through `kubernetes-validate` from the venv) and their
//! pods meet the `restricted` Pod Security Standard; every shipped
//! configuration passes the example's `--check`, the StatefulSet's once per
//! pod index; the container build's skeleton is a workspace cargo reads with
//! the same lock file; and, as a real process, a shard runs only its
//! collectors into `[sink.files] destination`, `[sink.local] dir` still
//! works with a warning, and shard settings that would run a pipeline twice
//! or nowhere are refused.
#![cfg(all(feature = "parquet", feature = "satay", feature = "metrics-http"))]
#![allow(clippy::unwrap_used)] // test helpers: a failed set-up step fails the test

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use meathook_testkit::{FakeNea, FakeNeaConfig, Route};

/// The Kubernetes versions the manifests are checked against: the first
/// that sets the `apps.kubernetes.io/pod-index` label, and the newest the
/// pinned `kubernetes-validate` knows.
const KUBERNETES_VERSIONS: [&str; 2] = ["1.28.0", "1.37.0"];

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn example() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let path = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples/nea_weather");
    assert!(
        path.is_file(),
        "{} is missing: build it with `cargo build --example nea_weather`",
        path.display()
    );
    path
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("meathook-deploy-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The manifests of `examples/deploy`.
fn manifests() -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(root().join("examples/deploy"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .collect();
    found.sort();
    assert!(!found.is_empty(), "no manifest in examples/deploy");
    found
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `nea_weather --check CONFIG` with `MEATHOOK_SHARD` set to `shard`, or
/// unset.
fn check(config: &Path, shard: Option<&str>) -> Output {
    let mut cmd = Command::new(example());
    cmd.arg("--check")
        .arg(config)
        .env_remove("HF_TOKEN")
        .env_remove("DATABASE_URL")
        .env_remove("MEATHOOK_SHARD");
    if let Some(shard) = shard {
        cmd.env("MEATHOOK_SHARD", shard);
    }
    cmd.output().unwrap()
}

/// Runs `script` with the venv's Python on `args`.
fn run_python(python: &Path, script: &str, args: &[PathBuf]) -> Output {
    Command::new(python)
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .unwrap()
}

/// `kubernetes-validate --strict` (unknown fields are errors) of `files`
/// against each of [`KUBERNETES_VERSIONS`]; the first failure's output.
fn validate(python: &Path, files: &[PathBuf]) -> Result<(), String> {
    for version in KUBERNETES_VERSIONS {
        let out = Command::new(python)
            .args(["-m", "kubernetes_validate", "--strict", "--quiet", "-k"])
            .arg(version)
            .args(files)
            .output()
            .unwrap();
        if !out.status.success() {
            return Err(format!("Kubernetes {version}: {}", text(&out)));
        }
    }
    Ok(())
}

#[test]
fn manifests_match_the_kubernetes_schema() {
    let Some(python) = meathook_testkit::python::interpreter() else {
        return;
    };
    if let Err(e) = validate(&python, &manifests()) {
        panic!("a manifest in examples/deploy is not a valid Kubernetes object: {e}");
    }
}

/// The pod templates of every manifest given, against the `restricted`
/// Pod Security Standard's rules for what they set (privilege, host
/// namespaces, volume types, host ports, capabilities, seccomp, users,
/// SELinux, /proc, sysctls), and what the example adds: a read-only root
/// filesystem, a numeric user, a versioned image with an explicit pull
/// policy, and no literal secret in `env`. Prints how many pod templates
/// it read.
const POD_SECURITY: &str = r#"
import re, sys, yaml

VOLUMES = {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral",
           "persistentVolumeClaim", "projected", "secret"}
SELINUX_TYPES = {None, "", "container_t", "container_init_t", "container_kvm_t",
                 "container_engine_t"}
SAFE_SYSCTLS = {"kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range",
                "net.ipv4.ip_unprivileged_port_start", "net.ipv4.tcp_syncookies",
                "net.ipv4.ping_group_range", "net.ipv4.ip_local_reserved_ports",
                "net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout",
                "net.ipv4.tcp_keepalive_intvl", "net.ipv4.tcp_keepalive_probes"}
SECRET_NAME = re.compile(r"TOKEN|SECRET|PASSWORD|API_KEY|ACCESS_KEY|DATABASE_URL")

def pod_spec(doc):
    kind, spec = doc.get("kind"), doc.get("spec") or {}
    if kind == "Pod":
        return spec
    if kind in ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"):
        return spec["template"]["spec"]
    if kind == "CronJob":
        return spec["jobTemplate"]["spec"]["template"]["spec"]
    return None

problems, pods = [], 0
for path in sys.argv[1:]:
    with open(path) as f:
        docs = [d for d in yaml.safe_load_all(f) if d]
    for doc in docs:
        spec = pod_spec(doc)
        if spec is None:
            continue
        pods += 1
        where = f"{path}: {doc['kind']}/{doc['metadata']['name']}"
        pod = spec.get("securityContext") or {}
        for key in ("hostNetwork", "hostPID", "hostIPC"):
            if spec.get(key):
                problems.append(f"{where}: {key} is set")
        for volume in spec.get("volumes") or []:
            kinds = set(volume) - {"name"}
            if not kinds <= VOLUMES:
                problems.append(f"{where}: volume {volume['name']} is of type {', '.join(sorted(kinds))}")
        for sysctl in pod.get("sysctls") or []:
            if sysctl["name"] not in SAFE_SYSCTLS:
                problems.append(f"{where}: sysctl {sysctl['name']}")
        containers = (spec.get("initContainers") or []) + spec["containers"] \
            + (spec.get("ephemeralContainers") or [])
        for c in containers:
            sc = c.get("securityContext") or {}
            at = f"{where}: container {c['name']}"
            merged = lambda key: sc.get(key, pod.get(key))
            if sc.get("privileged"):
                problems.append(f"{at}: privileged")
            if sc.get("allowPrivilegeEscalation") is not False:
                problems.append(f"{at}: allowPrivilegeEscalation must be false")
            if merged("runAsNonRoot") is not True:
                problems.append(f"{at}: runAsNonRoot must be true (pod or container)")
            user = merged("runAsUser")
            if not isinstance(user, int) or user == 0:
                problems.append(f"{at}: runAsUser must be a numeric non-root user, not {user!r}")
            if (merged("seccompProfile") or {}).get("type") not in ("RuntimeDefault", "Localhost"):
                problems.append(f"{at}: seccompProfile.type must be RuntimeDefault or Localhost")
            caps = sc.get("capabilities") or {}
            if "ALL" not in (caps.get("drop") or []):
                problems.append(f"{at}: capabilities must drop ALL")
            if set(caps.get("add") or []) - {"NET_BIND_SERVICE"}:
                problems.append(f"{at}: capabilities.add beyond NET_BIND_SERVICE")
            if (merged("seLinuxOptions") or {}).get("type") not in SELINUX_TYPES:
                problems.append(f"{at}: seLinuxOptions.type")
            if sc.get("procMount", "Default") != "Default":
                problems.append(f"{at}: procMount")
            for port in c.get("ports") or []:
                if port.get("hostPort"):
                    problems.append(f"{at}: hostPort {port['hostPort']}")
            if sc.get("readOnlyRootFilesystem") is not True:
                problems.append(f"{at}: readOnlyRootFilesystem must be true")
            image = c.get("image", "")
            tag = image.rsplit("/", 1)[-1].partition(":")[2]
            if not tag or tag == "latest":
                problems.append(f"{at}: image {image!r} needs a versioned tag")
            if "imagePullPolicy" not in c:
                problems.append(f"{at}: imagePullPolicy must be explicit")
            for env in c.get("env") or []:
                if "value" in env and SECRET_NAME.search(env["name"]):
                    problems.append(f"{at}: env {env['name']} has a literal value: take it from a Secret")
print(pods)
if problems:
    sys.exit("\n".join(problems))
"#;

#[test]
fn pods_meet_the_restricted_pod_security_standard() {
    let Some(python) = meathook_testkit::python::interpreter() else {
        return;
    };
    let out = run_python(&python, POD_SECURITY, &manifests());
    assert!(
        out.status.success(),
        "a pod in examples/deploy breaks the restricted Pod Security Standard:\n{}",
        text(&out)
    );
    let pods: usize = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    assert!(pods >= 1, "no pod template found in examples/deploy");
}

/// Both checks refuse a manifest that breaks them: a field of the wrong
/// type, and a container allowed to gain privileges.
#[test]
fn the_manifest_checks_refuse_a_broken_manifest() {
    let Some(python) = meathook_testkit::python::interpreter() else {
        return;
    };
    let original =
        std::fs::read_to_string(root().join("examples/deploy/statefulset.yaml")).unwrap();
    let dir = scratch("broken");
    let broken = |name: &str, from: &str, to: &str| {
        assert!(original.contains(from), "{from:?} is not in the manifest");
        let path = dir.join(name);
        std::fs::write(&path, original.replacen(from, to, 1)).unwrap();
        vec![path]
    };

    let schema = broken("schema.yaml", "runAsNonRoot: true", "runAsNonRoot: \"yes\"");
    let refused = validate(&python, &schema).unwrap_err();
    assert!(refused.contains("runAsNonRoot"), "{refused}");
    let unknown = broken(
        "unknown.yaml",
        "imagePullPolicy: IfNotPresent",
        "imagePullPolicy: IfNotPresent\n          imagePulPolicy: Always",
    );
    let refused = validate(&python, &unknown).unwrap_err();
    assert!(refused.contains("imagePulPolicy"), "{refused}");

    let escalating = broken(
        "escalating.yaml",
        "allowPrivilegeEscalation: false",
        "allowPrivilegeEscalation: true",
    );
    let out = run_python(&python, POD_SECURITY, &escalating);
    assert!(!out.status.success(), "accepted: {}", text(&out));
    assert!(
        text(&out).contains("allowPrivilegeEscalation"),
        "{}",
        text(&out)
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// Reads the StatefulSets' wiring with a YAML parser: each container takes
/// `MEATHOOK_SHARD` from the pod-index label, and its first argument is a
/// file of a ConfigMap mounted into it. Prints, per StatefulSet, the
/// replica count and that file's text, as JSON lines.
#[cfg(feature = "s3")]
const SHARDED_PODS: &str = r#"
import json, posixpath, sys, yaml

POD_INDEX = "metadata.labels['apps.kubernetes.io/pod-index']"
docs = []
for path in sys.argv[1:]:
    with open(path) as f:
        docs += [d for d in yaml.safe_load_all(f) if d]
config_maps = {d["metadata"]["name"]: d.get("data") or {} for d in docs if d["kind"] == "ConfigMap"}
problems, found = [], 0
for d in docs:
    if d["kind"] != "StatefulSet":
        continue
    spec = d["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in spec.get("volumes") or []}
    for c in spec["containers"]:
        at = f"StatefulSet/{d['metadata']['name']}: container {c['name']}"
        shard = [e for e in c.get("env") or [] if e["name"] == "MEATHOOK_SHARD"]
        if [e.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") for e in shard] != [POD_INDEX]:
            problems.append(f"{at}: MEATHOOK_SHARD must come from {POD_INDEX}")
        args = c.get("args") or []
        config = args[0] if args else ""
        text = None
        for mount in c.get("volumeMounts") or []:
            source = volumes.get(mount["name"], {}).get("configMap")
            if source and posixpath.dirname(config) == mount["mountPath"].rstrip("/"):
                text = config_maps.get(source["name"], {}).get(posixpath.basename(config))
        if text is None:
            problems.append(f"{at}: its configuration {config!r} is no file of a mounted ConfigMap in these manifests")
            continue
        found += 1
        print(json.dumps({"replicas": d["spec"].get("replicas", 1), "config": text}))
if problems:
    sys.exit("\n".join(problems))
if not found:
    sys.exit("no StatefulSet with a configured container")
"#;

/// The configuration each pod of the StatefulSet reads passes `--check`
/// with that pod's index as its shard; one index past the last is refused,
/// as that pod would run nothing. Its destination is an `s3://` bucket, so
/// this needs a build with `s3` (CI's `--all-features`).
#[cfg(feature = "s3")]
#[test]
fn every_pod_of_the_statefulset_gets_a_shard_its_configuration_accepts() {
    let Some(python) = meathook_testkit::python::interpreter() else {
        return;
    };
    let out = run_python(&python, SHARDED_PODS, &manifests());
    assert!(out.status.success(), "{}", text(&out));
    let dir = scratch("pods");
    for (i, line) in String::from_utf8_lossy(&out.stdout).lines().enumerate() {
        let pod: serde_json::Value = serde_json::from_str(line).unwrap();
        let replicas = pod["replicas"].as_u64().unwrap();
        let config = dir.join(format!("statefulset-{i}.toml"));
        std::fs::write(&config, pod["config"].as_str().unwrap()).unwrap();
        for index in 0..replicas {
            let out = check(&config, Some(&index.to_string()));
            assert!(
                out.status.success(),
                "pod index {index}: {}\n(an s3:// destination needs the example built with \
                 `--features s3`, as CI's --all-features builds it)",
                text(&out)
            );
            assert!(!text(&out).contains("deprecated"), "{}", text(&out));
        }
        let out = check(&config, Some(&replicas.to_string()));
        assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    }
    let _ = std::fs::remove_dir_all(dir);
}

/// `examples/meathook.toml` and any configuration file in `examples/deploy`
/// pass `--check` as they are, with no deprecated key.
#[test]
fn shipped_configuration_files_pass_check() {
    let mut configs = vec![root().join("examples/meathook.toml")];
    for entry in std::fs::read_dir(root().join("examples/deploy")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            configs.push(path);
        }
    }
    for config in configs {
        let out = check(&config, None);
        assert!(out.status.success(), "{}: {}", config.display(), text(&out));
        assert!(
            !text(&out).contains("deprecated"),
            "{}: {}",
            config.display(),
            text(&out)
        );
    }
}

/// The smallest configuration, with `sink` as its destination section and
/// `collectors` appended.
fn config_with(dir: &Path, sink: &str, collectors: &str) -> PathBuf {
    let path = dir.join("meathook.toml");
    let text = format!(
        "spool_dir = \"{spool}\"\n[flush]\nevery = \"1h\"\n{sink}\n[shutdown]\ndeadline = \"20s\"\n{collectors}",
        spool = dir.join("spool").display(),
    );
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn sink_local_still_works_with_a_warning_naming_sink_files() {
    let dir = scratch("local");
    let data = dir.join("dataset");
    let old = config_with(
        &dir,
        &format!("[sink.local]\ndir = \"{}\"", data.display()),
        "[collectors.rainfall]\ninterval = \"1m\"\n",
    );
    let out = check(&old, None);
    assert!(out.status.success(), "{}", text(&out));
    let warning = text(&out);
    assert!(
        warning.contains("[sink.local]")
            && warning.contains("line 4")
            && warning.contains("deprecated")
            && warning.contains("[sink.files]")
            && warning.contains("destination"),
        "{warning}"
    );

    let both = config_with(
        &dir,
        &format!(
            "[sink.files]\ndestination = \"{0}\"\n[sink.local]\ndir = \"{0}\"",
            data.display()
        ),
        "[collectors.rainfall]\ninterval = \"1m\"\n",
    );
    let out = check(&both, None);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("[sink.local]") && text(&out).contains("[sink.files]"),
        "{}",
        text(&out)
    );

    let bad = config_with(
        &dir,
        "[sink.files]\ndestination = \"ftp://example.org/data\"",
        "[collectors.rainfall]\ninterval = \"1m\"\n",
    );
    let out = check(&bad, None);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("sink.files.destination") && text(&out).contains("line 5"),
        "{}",
        text(&out)
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn shard_settings_that_would_run_a_pipeline_twice_or_nowhere_are_refused() {
    let dir = scratch("shards");
    let sink = format!(
        "[sink.files]\ndestination = \"{}\"",
        dir.join("dataset").display()
    );
    let sharded = "[collectors.air_temperature]\ninterval = \"1m\"\nshard = 0\n\
                   [collectors.rainfall]\ninterval = \"1m\"\nshard = 1\n";
    let config = config_with(&dir, &sink, sharded);
    let refused = |shard: Option<&str>, says: &[&str]| {
        let out = check(&config, shard);
        assert_eq!(out.status.code(), Some(2), "{shard:?}: {}", text(&out));
        for word in says {
            assert!(text(&out).contains(word), "{shard:?}: {}", text(&out));
        }
    };
    // Sharded collectors: the process must know its shard, and have one.
    refused(None, &["MEATHOOK_SHARD", "not set", "0, 1"]);
    refused(Some(""), &["MEATHOOK_SHARD", "not a shard number"]);
    refused(Some("one"), &["MEATHOOK_SHARD", "not a shard number"]);
    refused(
        Some("2"),
        &["MEATHOOK_SHARD = 2", "no collector has `shard = 2`"],
    );
    for shard in ["0", "1"] {
        let out = check(&config, Some(shard));
        assert!(out.status.success(), "{shard}: {}", text(&out));
    }

    // Unsharded collectors refuse a shard: every process would run them.
    let config = config_with(&dir, &sink, "[collectors.rainfall]\ninterval = \"1m\"\n");
    let out = check(&config, Some("0"));
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("no collector names a shard"),
        "{}",
        text(&out)
    );

    // A collector left out of the shards would run in every process.
    let config = config_with(
        &dir,
        &sink,
        "[collectors.air_temperature]\ninterval = \"1m\"\nshard = 0\n\
         [collectors.rainfall]\ninterval = \"1m\"\n",
    );
    let out = check(&config, Some("0"));
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("`collectors.rainfall`") && text(&out).contains("line 11"),
        "{}",
        text(&out)
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// Every file under `dir`, relative to it.
fn files_under(dir: &Path) -> BTreeSet<PathBuf> {
    let mut out = BTreeSet::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.insert(path.strip_prefix(dir).unwrap().to_path_buf());
            }
        }
    }
    out
}

/// The process of shard 1 polls only shard 1's API and delivers its
/// windows to `[sink.files] destination`; shard 0's API is never asked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shard_runs_only_its_collectors_into_sink_files_destination() {
    let fake = FakeNea::start(FakeNeaConfig {
        stations: 4,
        ..FakeNeaConfig::default()
    })
    .await
    .unwrap();
    let dir = scratch("run");
    let data = dir.join("files");
    let config = config_with(
        &dir,
        &format!(
            "[sink.files]\ndestination = \"{}\"\n[api]\nbase_url = \"{}\"",
            data.display(),
            fake.base_url()
        ),
        "[collectors.air_temperature]\ninterval = \"1s\"\nshard = 0\n\
         [collectors.rainfall]\ninterval = \"1s\"\nshard = 1\n",
    );
    let log = dir.join("run.log");
    let mut child = Command::new(example())
        .arg(&config)
        .env_remove("HF_TOKEN")
        .env_remove("DATABASE_URL")
        .env("MEATHOOK_SHARD", "1")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_secs(4)).await;
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill -TERM failed");
    let code = tokio::task::block_in_place(|| {
        let deadline = Instant::now() + Duration::from_secs(40);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status.code();
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    });
    let output = std::fs::read_to_string(&log).unwrap();
    assert_eq!(code, Some(0), "{output}");

    assert!(fake.requests(Route::Rainfall) > 0, "{output}");
    assert_eq!(fake.requests(Route::AirTemperature), 0, "{output}");
    let files = files_under(&data);
    let parquet: Vec<&PathBuf> = files
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
        .collect();
    assert!(!parquet.is_empty(), "no file landed: {files:?}\n{output}");
    for path in parquet {
        assert!(path.starts_with("data/rainfall"), "{}", path.display());
    }
    let spools: BTreeSet<String> = std::fs::read_dir(dir.join("spool"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| !name.contains('.'))
        .collect();
    assert_eq!(spools, BTreeSet::from(["rainfall".to_owned()]), "{output}");
    let _ = std::fs::remove_dir_all(dir);
}

/// Every target of a `cargo metadata` answer: package, kind, name and
/// source path relative to the workspace root.
fn targets(metadata: &serde_json::Value) -> BTreeSet<(String, String, String, String)> {
    let root = metadata["workspace_root"].as_str().unwrap();
    let mut out = BTreeSet::new();
    for package in metadata["packages"].as_array().unwrap() {
        for target in package["targets"].as_array().unwrap() {
            let path = target["src_path"].as_str().unwrap();
            let relative = Path::new(path).strip_prefix(root).unwrap();
            out.insert((
                package["name"].as_str().unwrap().to_owned(),
                target["kind"][0].as_str().unwrap().to_owned(),
                target["name"].as_str().unwrap().to_owned(),
                relative.to_string_lossy().into_owned(),
            ));
        }
    }
    out
}

/// `cargo ARGS` in the workspace whose root is `dir`; its standard output.
fn cargo(dir: &Path, args: &[&str]) -> String {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = Command::new(cargo)
        .args(args)
        .arg("--manifest-path")
        .arg(dir.join("Cargo.toml"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "cargo {} in {}: {}",
        args.join(" "),
        dir.display(),
        text(&out)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The workspace's packages and their dependencies as `cargo tree` resolves
/// them from the lock file (which it must not change), with `dir` written
/// as `.`. Only packages the build has already fetched are needed: the
/// host's, with default features.
fn resolved(dir: &Path) -> String {
    let tree = cargo(
        dir,
        &[
            "tree",
            "--locked",
            "--offline",
            "--workspace",
            "-e",
            "normal,build,dev",
            "--prefix",
            "none",
            "--format",
            "{p}",
        ],
    );
    tree.replace(dir.to_str().unwrap(), ".")
}

/// The Dockerfile's dependency layer builds against `skeleton.sh`'s
/// output: cargo must read it as the same workspace (every target where
/// cargo looks for it, the same lock file, the same resolved packages),
/// and it must hold nothing but manifests, the lock file, cargo's
/// configuration, stubs and build scripts, or an edit to the sources would
/// rebuild that layer.
#[test]
fn the_image_skeleton_is_the_workspace_without_its_sources() {
    let out_dir = scratch("skeleton");
    let skeleton = out_dir.join("skeleton");
    let mut path =
        std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()).collect::<Vec<_>>();
    if let Some(cargo) = std::env::var_os("CARGO") {
        path.insert(0, Path::new(&cargo).parent().unwrap().to_path_buf());
    }
    let out = Command::new("sh")
        .arg("examples/deploy/skeleton.sh")
        .arg(&skeleton)
        .current_dir(root())
        .env("PATH", std::env::join_paths(path).unwrap())
        .output()
        .unwrap();
    assert!(out.status.success(), "skeleton.sh: {}", text(&out));

    let metadata = |dir: &Path| -> serde_json::Value {
        let args = [
            "metadata",
            "--no-deps",
            "--format-version",
            "1",
            "--offline",
        ];
        serde_json::from_str(&cargo(dir, &args)).unwrap()
    };
    let workspace = metadata(root());
    let wanted = targets(&workspace);
    assert!(wanted.len() > 10, "{wanted:?}");
    assert_eq!(targets(&metadata(&skeleton)), wanted);
    assert_eq!(resolved(&skeleton), resolved(root()));
    assert_eq!(
        std::fs::read(skeleton.join("Cargo.lock")).unwrap(),
        std::fs::read(root().join("Cargo.lock")).unwrap()
    );

    let mut expected: BTreeSet<PathBuf> = ["Cargo.lock", ".cargo/config.toml"]
        .into_iter()
        .map(PathBuf::from)
        .filter(|p| root().join(p).is_file())
        .collect();
    let workspace_root = Path::new(workspace["workspace_root"].as_str().unwrap());
    for package in workspace["packages"].as_array().unwrap() {
        let manifest = Path::new(package["manifest_path"].as_str().unwrap());
        expected.insert(manifest.strip_prefix(workspace_root).unwrap().to_path_buf());
    }
    for (_, kind, _, source) in &wanted {
        expected.insert(PathBuf::from(source));
        let content = std::fs::read_to_string(skeleton.join(source)).unwrap();
        if kind == "custom-build" {
            let real = std::fs::read_to_string(root().join(source)).unwrap();
            assert_eq!(content, real, "{source}");
        } else {
            assert!(content.starts_with("//! A stub"), "{source}: {content}");
        }
    }
    assert_eq!(files_under(&skeleton), expected);
    let _ = std::fs::remove_dir_all(out_dir);
}
