//! The Helm chart (`helm/eventyay-bbb`) rendered the ways operators install it. Each render must
//! pass `helm lint --strict`, `helm template` and `kubernetes-validate --strict` against
//! Kubernetes' own schemas, and the rendered objects are read for what the service needs: gRPC
//! probes on the right health names, the restricted security context, and each database mode's
//! objects and none of the other's.
//!
//! helm comes from `EVENTYAY_BBB_HELM` or PATH, kubernetes-validate from
//! `EVENTYAY_BBB_KUBERNETES_VALIDATE` or PATH; `.ci/run` installs both. Outside CI a missing tool
//! skips these tests, loudly; in CI (`CI=true`) it fails them.

use serde::Deserialize;
use serde_yaml_ng::Value;
use std::{
    io::Write,
    path::PathBuf,
    process::{Command, Stdio},
};

/// The Kubernetes version renders are made for and validated against, and the chart's floor.
const KUBE: &str = "1.31.0";
const KUBE_FLOOR: &str = "1.27.0";
const RELEASE: &str = "eventyay-bbb";
const NAMESPACE: &str = "bbb";
const POSTGRES_URL: &str = "postgres://bbb:pw@db.example.org:5432/bbb";
/// The tokens every render is given (the chart makes none up).
const TOKENS: [&str; 4] = [
    "--set",
    "secret.apiToken=api-token-of-the-chart-tests",
    "--set",
    "secret.adminToken=admin-token-of-the-chart-tests",
];

fn chart() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("helm/eventyay-bbb")
}

/// The tool named by `var`, else `name` from PATH; `None` (after saying so) when absent outside CI.
fn tool(var: &str, name: &str, probe: &str) -> Option<PathBuf> {
    let candidate = std::env::var_os(var)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(name));
    let works = Command::new(&candidate)
        .arg(probe)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if works {
        return Some(candidate);
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{name} is missing in CI: set {var} or put it on PATH (see .ci/run)");
    }
    crate::common::skip_loudly(&format!(
        "{name} not found (set {var} or put it on PATH; .ci/run shows how to \
         install it): the Helm chart was not checked"
    ));
    None
}

struct Tools {
    helm: PathBuf,
    validate: PathBuf,
}

fn tools() -> Option<Tools> {
    let helm = tool("EVENTYAY_BBB_HELM", "helm", "version");
    let validate = tool(
        "EVENTYAY_BBB_KUBERNETES_VALIDATE",
        "kubernetes-validate",
        "--version",
    );
    Some(Tools {
        helm: helm?,
        validate: validate?,
    })
}

/// The rendered objects of one install.
struct Render(Vec<Value>);

impl Render {
    fn all(&self, kind: &str) -> Vec<&Value> {
        self.0.iter().filter(|d| d["kind"] == kind).collect()
    }

    fn one(&self, kind: &str) -> &Value {
        let found = self.all(kind);
        assert_eq!(found.len(), 1, "expected one {kind}");
        found[0]
    }

    fn kinds(&self) -> Vec<&str> {
        self.0.iter().filter_map(|d| d["kind"].as_str()).collect()
    }

    fn deployment(&self) -> &Value {
        self.one("Deployment")
    }

    fn pod(&self) -> &Value {
        &self.deployment()["spec"]["template"]["spec"]
    }

    fn container(&self) -> &Value {
        &self.pod()["containers"][0]
    }

    /// The container's environment as the kubelet assembles it: the ConfigMap named in
    /// `envFrom`, then `env` on top. Values from secrets come back as `secret:NAME/KEY`.
    fn env(&self, name: &str) -> Option<String> {
        let container = self.container();
        let direct = container["env"].as_sequence().and_then(|env| {
            env.iter().find(|e| e["name"] == name).map(|e| {
                match e["valueFrom"]["secretKeyRef"].as_mapping() {
                    Some(secret) => format!(
                        "secret:{}/{}",
                        secret["name"].as_str().unwrap(),
                        secret["key"].as_str().unwrap()
                    ),
                    None => e["value"].as_str().unwrap().to_owned(),
                }
            })
        });
        direct.or_else(|| {
            let map = container["envFrom"][0]["configMapRef"]["name"].as_str()?;
            let config = self
                .all("ConfigMap")
                .into_iter()
                .find(|c| c["metadata"]["name"] == map)?;
            config["data"][name].as_str().map(str::to_owned)
        })
    }

    fn secret_volume(&self) -> &str {
        let volumes = self.pod()["volumes"].as_sequence().unwrap();
        let volume = volumes.iter().find(|v| v["name"] == "secret").unwrap();
        volume["secret"]["secretName"].as_str().unwrap()
    }
}

/// A custom resource the pretend cluster serves: its API version, and the kind it brings, for
/// which kubernetes-validate has no schema.
type Crd = (&'static str, &'static str);

const PROMETHEUS_OPERATOR: Crd = ("monitoring.coreos.com/v1", "ServiceMonitor");

/// Runs helm and returns its standard output, failing the test with everything helm said.
fn helm(tools: &Tools, args: &[&str]) -> String {
    let out = Command::new(&tools.helm).args(args).output().unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        out.status.success(),
        "helm {args:?} failed:\n{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// Lints, renders and validates the chart with `values` (helm `--set` arguments, after the
/// tokens) for a cluster of version `kube` serving `crds`, and parses the render.
fn checked_render(tools: &Tools, kube: &str, values: &[&str], crds: &[Crd]) -> Render {
    let chart = chart();
    let chart = chart.to_str().unwrap();
    let values = [&TOKENS[..], values].concat();
    let values = &values[..];
    let common = [chart, "--namespace", NAMESPACE, "--kube-version", kube];
    helm(
        tools,
        &[&["lint", "--strict"], &common[..], values].concat(),
    );
    let api_versions = crds.iter().flat_map(|(api, _)| ["--api-versions", api]);
    let template: Vec<&str> = [&["template", RELEASE], &common[..], values]
        .concat()
        .into_iter()
        .chain(api_versions)
        .collect();
    let manifest = helm(tools, &template);

    let mut validate = Command::new(&tools.validate)
        .args(["--strict", "-k", kube, "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    validate
        .stdin
        .take()
        .unwrap()
        .write_all(manifest.as_bytes())
        .unwrap();
    let out = validate.wait_with_output().unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && !report.contains("ERROR"),
        "kubernetes-validate {values:?}:\n{report}{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let render = Render(
        serde_yaml_ng::Deserializer::from_str(&manifest)
            .map(|doc| Value::deserialize(doc).unwrap())
            .filter(|doc| !doc.is_null())
            .collect(),
    );
    let schemaless = |kind: &str| crds.iter().any(|(_, k)| *k == kind);
    let expected_passes = render
        .kinds()
        .into_iter()
        .filter(|k| !schemaless(k))
        .count();
    let passes = report.lines().filter(|l| l.starts_with("INFO")).count();
    assert_eq!(
        passes, expected_passes,
        "every object with a schema must be validated:\n{report}"
    );
    for warning in report.lines().filter(|l| l.starts_with("WARN")) {
        assert!(
            crds.iter().any(|(_, kind)| warning.contains(kind)),
            "{warning}"
        );
    }
    render
}

/// Liveness and startup ask for `liveness` (the process runs), readiness for "" (the database
/// answers), all over native gRPC on the container's port.
fn assert_grpc_probes(render: &Render) {
    assert_grpc_probes_on(render, 50051);
    assert!(
        render.env("EVENTYAY_BBB_TLS_CERT").is_none(),
        "plaintext unless a certificate Secret is given"
    );
}

/// The same probes, asking `port`.
fn assert_grpc_probes_on(render: &Render, port: u64) {
    let container = render.container();
    for (probe, service) in [
        ("startupProbe", "liveness"),
        ("livenessProbe", "liveness"),
        ("readinessProbe", ""),
    ] {
        let grpc = &container[probe]["grpc"];
        assert_eq!(grpc["port"].as_u64(), Some(port), "{probe}");
        assert_eq!(grpc["service"].as_str(), Some(service), "{probe}");
        assert!(container[probe]["httpGet"].is_null() && container[probe]["exec"].is_null());
    }
    assert_eq!(container["ports"][0]["name"], "grpc");
    assert_eq!(
        render.env("EVENTYAY_BBB_LISTEN").as_deref(),
        Some("0.0.0.0:50051")
    );
}

/// The "restricted" Pod Security Standard, on a pod spec and all of its containers.
fn assert_restricted(pod: &Value) {
    let context = &pod["securityContext"];
    assert_eq!(context["runAsNonRoot"].as_bool(), Some(true));
    assert_eq!(context["runAsUser"].as_u64(), Some(65532));
    assert_eq!(context["seccompProfile"]["type"], "RuntimeDefault");
    assert_eq!(pod["automountServiceAccountToken"].as_bool(), Some(false));
    for container in pod["containers"].as_sequence().unwrap() {
        let context = &container["securityContext"];
        assert_eq!(context["allowPrivilegeEscalation"].as_bool(), Some(false));
        assert_eq!(context["readOnlyRootFilesystem"].as_bool(), Some(true));
        assert_eq!(
            context["capabilities"]["drop"],
            serde_yaml_ng::to_value(["ALL"]).unwrap()
        );
        assert!(context["capabilities"]["add"].is_null() && context["privileged"].is_null());
        let mounts = container["volumeMounts"].as_sequence().unwrap();
        assert!(
            mounts.iter().any(|m| m["mountPath"] == "/tmp"),
            "a read-only root needs a writable /tmp"
        );
        assert!(container["resources"]["requests"].is_mapping());
    }
}

fn assert_grpc_service(render: &Render) {
    for service in render.all("Service") {
        let port = &service["spec"]["ports"][0];
        assert_eq!(port["name"], "grpc");
        assert_eq!(port["appProtocol"], "grpc");
        assert_eq!(
            service["spec"]["selector"]["app.kubernetes.io/component"], "server",
            "the migration Job's pod must never receive calls"
        );
    }
}

#[test]
fn defaults_run_one_sqlite_replica_on_a_volume() {
    let Some(tools) = tools() else { return };
    let render = checked_render(&tools, KUBE, &[], &[]);

    for absent in ["HorizontalPodAutoscaler", "PodDisruptionBudget", "Job"] {
        assert!(render.all(absent).is_empty(), "{absent} in SQLite mode");
    }
    let spec = &render.deployment()["spec"];
    assert_eq!(spec["replicas"].as_u64(), Some(1));
    assert_eq!(spec["strategy"]["type"], "Recreate");
    let pvc = render.one("PersistentVolumeClaim");
    let volumes = render.pod()["volumes"].as_sequence().unwrap();
    let data = volumes.iter().find(|v| v["name"] == "data").unwrap();
    assert_eq!(
        data["persistentVolumeClaim"]["claimName"],
        pvc["metadata"]["name"]
    );
    let mounts = render.container()["volumeMounts"].as_sequence().unwrap();
    assert!(
        mounts
            .iter()
            .any(|m| m["name"] == "data" && m["mountPath"] == "/data")
    );
    assert_eq!(
        render.env("EVENTYAY_BBB_DATABASE_URL").as_deref(),
        Some("sqlite:///data/eventyay-bbb.db?mode=rwc")
    );
    assert_ne!(render.env("EVENTYAY_BBB_MIGRATE").as_deref(), Some("false"));

    assert_grpc_probes(&render);
    assert_restricted(render.pod());
    assert_grpc_service(&render);
    assert!(render.all("NetworkPolicy").is_empty() && render.all("ServiceMonitor").is_empty());
    assert!(render.container()["lifecycle"]["preStop"]["sleep"]["seconds"].is_u64());

    // Tokens and the servers file reach the service as files from the chart's own Secret.
    let secret = render.one("Secret");
    assert_eq!(secret["metadata"]["name"], render.secret_volume());
    for key in ["api-token", "admin-token", "servers.toml"] {
        assert!(secret["data"][key].is_string(), "{key}");
    }
    assert!(secret["metadata"]["annotations"]["helm.sh/hook"].is_null());
    for (var, file) in [
        ("EVENTYAY_BBB_API_TOKEN_FILE", "api-token"),
        ("EVENTYAY_BBB_ADMIN_TOKEN_FILE", "admin-token"),
        ("EVENTYAY_BBB_SERVERS_FILE", "servers.toml"),
    ] {
        assert_eq!(
            render.env(var).as_deref(),
            Some(format!("/etc/eventyay-bbb/{file}").as_str())
        );
    }
}

#[test]
fn postgres_runs_replicas_and_migrates_in_a_hook_job() {
    let Some(tools) = tools() else { return };
    let url = format!("database.postgres.url={POSTGRES_URL}");
    let render = checked_render(
        &tools,
        KUBE,
        &["--set", "database.type=postgres", "--set", &url],
        &[],
    );

    let spec = &render.deployment()["spec"];
    assert!(spec["replicas"].is_null(), "the HPA owns the replica count");
    assert_eq!(spec["strategy"]["type"], "RollingUpdate");
    let hpa = render.one("HorizontalPodAutoscaler");
    assert_eq!(
        hpa["spec"]["scaleTargetRef"]["name"],
        render.deployment()["metadata"]["name"]
    );
    assert!(hpa["spec"]["minReplicas"].as_u64().unwrap() >= 2);
    let pdb = render.one("PodDisruptionBudget");
    assert_eq!(
        pdb["spec"]["selector"]["matchLabels"],
        spec["selector"]["matchLabels"]
    );
    assert!(render.all("PersistentVolumeClaim").is_empty());
    assert!(
        render.pod()["volumes"]
            .as_sequence()
            .unwrap()
            .iter()
            .all(|v| v["name"] != "data")
    );

    let secret = render.one("Secret");
    let url_ref = format!(
        "secret:{}/database-url",
        secret["metadata"]["name"].as_str().unwrap()
    );
    assert_eq!(
        render.env("EVENTYAY_BBB_DATABASE_URL").as_deref(),
        Some(url_ref.as_str())
    );
    assert_eq!(render.env("EVENTYAY_BBB_MIGRATE").as_deref(), Some("false"));

    let job = render.one("Job");
    let hooks = &job["metadata"]["annotations"];
    assert_eq!(hooks["helm.sh/hook"], "pre-install,pre-upgrade");
    let job_pod = &job["spec"]["template"]["spec"];
    let migrate = &job_pod["containers"][0];
    assert_eq!(
        migrate["args"],
        serde_yaml_ng::to_value(["migrate"]).unwrap()
    );
    assert_eq!(migrate["image"], render.container()["image"]);
    let job_env = migrate["env"].as_sequence().unwrap();
    let job_url = job_env
        .iter()
        .find(|e| e["name"] == "EVENTYAY_BBB_DATABASE_URL")
        .unwrap();
    assert_eq!(
        job_url["valueFrom"]["secretKeyRef"]["name"],
        secret["metadata"]["name"]
    );
    assert_ne!(
        job["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/component"],
        "server"
    );
    assert_restricted(job_pod);

    // The Job reads the URL before the release's own objects exist: the Secret holding it must
    // be a hook that runs first.
    let secret_hooks = &secret["metadata"]["annotations"];
    assert_eq!(secret_hooks["helm.sh/hook"], "pre-install,pre-upgrade");
    let weight = |hooks: &Value| {
        hooks["helm.sh/hook-weight"]
            .as_str()
            .unwrap()
            .parse::<i32>()
            .unwrap()
    };
    assert!(weight(secret_hooks) < weight(hooks));

    assert_grpc_probes(&render);
    assert_restricted(render.pod());
    assert_grpc_service(&render);
}

#[test]
fn postgres_without_a_database_url_is_refused() {
    let Some(tools) = tools() else { return };
    let out = Command::new(&tools.helm)
        .args(["template", RELEASE])
        .arg(chart())
        .args(TOKENS)
        .args(["--set", "database.type=postgres"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("database.postgres.url"));
}

#[test]
fn existing_secret_renders_no_secret_and_mounts_the_given_one() {
    let Some(tools) = tools() else { return };
    let render = checked_render(
        &tools,
        KUBE,
        &["--set", "secret.existingSecret=bbb-credentials"],
        &[],
    );

    assert!(render.all("Secret").is_empty());
    assert_eq!(render.secret_volume(), "bbb-credentials");
    let annotations = &render.deployment()["spec"]["template"]["metadata"]["annotations"];
    assert!(annotations["checksum/secret"].is_null());

    let postgres = checked_render(
        &tools,
        KUBE,
        &[
            "--set",
            "secret.existingSecret=bbb-credentials",
            "--set",
            "database.type=postgres",
        ],
        &[],
    );
    assert!(postgres.all("Secret").is_empty());
    assert_eq!(
        postgres.env("EVENTYAY_BBB_DATABASE_URL").as_deref(),
        Some("secret:bbb-credentials/database-url")
    );
}

#[test]
fn network_policy_and_service_monitor_when_asked_and_the_crd_is_there() {
    let Some(tools) = tools() else { return };
    let args = [
        "--set",
        "networkPolicy.enabled=true",
        "--set",
        "metrics.enabled=true",
        "--set",
        "metrics.serviceMonitor.enabled=true",
        "--set",
        "otel.enabled=true",
        "--set",
        "database.type=postgres",
        "--set",
        "database.postgres.existingSecret=pg-app",
        "--set",
        "database.postgres.existingSecretKey=uri",
    ];
    let render = checked_render(&tools, KUBE, &args, &[PROMETHEUS_OPERATOR]);

    let policy = render.one("NetworkPolicy");
    let ingress = &policy["spec"]["ingress"];
    assert_eq!(ingress[0]["ports"][0]["port"], "grpc");
    assert_eq!(ingress[1]["ports"][0]["port"], "metrics");
    let egress_ports: Vec<u64> = policy["spec"]["egress"]
        .as_sequence()
        .unwrap()
        .iter()
        .flat_map(|rule| rule["ports"].as_sequence().unwrap())
        .filter_map(|p| p["port"].as_u64())
        .collect();
    for port in [53, 443, 5432, 4317] {
        assert!(egress_ports.contains(&port), "egress to {port}");
    }
    let monitor = render.one("ServiceMonitor");
    assert_eq!(monitor["spec"]["endpoints"][0]["port"], "metrics");
    assert_eq!(
        render.env("EVENTYAY_BBB_METRICS_LISTEN").as_deref(),
        Some("0.0.0.0:9464")
    );
    assert_eq!(
        render.env("EVENTYAY_BBB_DATABASE_URL").as_deref(),
        Some("secret:pg-app/uri")
    );
    assert_eq!(
        render.env("OTEL_EXPORTER_OTLP_ENDPOINT").as_deref(),
        Some("http://opentelemetry-collector.observability.svc:4317")
    );
    // The URL is the operator's, so the chart's Secret holds none and need not be a hook.
    assert!(render.one("Secret")["metadata"]["annotations"].is_null());

    let without_crd = checked_render(&tools, KUBE, &args, &[]);
    assert!(without_crd.all("ServiceMonitor").is_empty());
}

#[test]
fn renders_for_the_oldest_kubernetes_the_chart_accepts() {
    let Some(tools) = tools() else { return };
    let url = format!("database.postgres.url={POSTGRES_URL}");
    for args in [
        &[][..],
        &["--set", "database.type=postgres", "--set", &url][..],
    ] {
        let render = checked_render(&tools, KUBE_FLOOR, args, &[]);
        // The kubelet's sleep action came in 1.30: older clusters get no preStop hook.
        assert!(render.container()["lifecycle"].is_null());
        assert_grpc_probes(&render);
    }
}

/// What `helm template` renders for these values, or what helm said when it refused.
fn render_raw(tools: &Tools, values: &[&str]) -> Result<String, String> {
    let out = Command::new(&tools.helm)
        .args(["template", RELEASE])
        .arg(chart())
        .args(["--namespace", NAMESPACE])
        .args(values)
        .output()
        .unwrap();
    if out.status.success() {
        Ok(String::from_utf8(out.stdout).unwrap())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// GitOps tools render with `helm template`: two renders of the same values must be the same,
/// so the chart never makes tokens up; without them it says what to set.
#[test]
fn renders_are_stable_and_tokens_are_never_made_up() {
    let Some(tools) = tools() else { return };
    let first = render_raw(&tools, &TOKENS).unwrap();
    let second = render_raw(&tools, &TOKENS).unwrap();
    assert_eq!(first, second, "two renders differ");
    for missing in [&[][..], &TOKENS[..2], &TOKENS[2..]] {
        let refused = render_raw(&tools, missing).unwrap_err();
        assert!(
            refused.contains("secret.apiToken and secret.adminToken are required"),
            "{refused}"
        );
    }
    // With a Secret of the operator's, the chart needs none.
    render_raw(&tools, &["--set", "secret.existingSecret=bbb-credentials"]).unwrap();
}

/// Each replica's pool is sized so that every pod that may run at once stays within the
/// connections the database allows; a pool that cannot fit is refused before it is deployed.
#[test]
fn postgres_pools_fit_within_the_database_connection_limit() {
    let Some(tools) = tools() else { return };
    let url = format!("database.postgres.url={POSTGRES_URL}");
    let base = ["--set", "database.type=postgres", "--set", url.as_str()];
    let pool = |extra: &[&str]| {
        checked_render(&tools, KUBE, &[&base[..], extra].concat(), &[])
            .env("EVENTYAY_BBB_DATABASE_POOL")
            .unwrap()
            .parse::<u32>()
            .unwrap()
    };
    // Six replicas at most, two more during a rollout: 8 × (11 + 1) + 2 = 98 ≤ 100.
    assert_eq!(pool(&[]), 11);
    assert_eq!(
        pool(&["--set", "database.postgres.maxConnections=1000"]),
        16
    );
    assert_eq!(pool(&["--set", "database.postgres.poolSize=4"]), 4);
    let fixed = [
        "--set",
        "autoscaling.enabled=false",
        "--set",
        "replicaCount=3",
    ];
    // Three replicas and one surging: 23 fits (4 × (23 + 1) + 2 = 98), 24 does not (102).
    assert_eq!(
        pool(&[&fixed[..], &["--set", "database.postgres.poolSize=23"]].concat()),
        23
    );
    let refused = render_raw(
        &tools,
        &[
            &TOKENS[..],
            &base[..],
            &fixed[..],
            &["--set", "database.postgres.poolSize=24"],
        ]
        .concat(),
    )
    .unwrap_err();
    assert!(
        refused.contains("more than maxConnections=100"),
        "{refused}"
    );
    // SQLite needs no such setting.
    assert!(
        checked_render(&tools, KUBE, &[], &[])
            .env("EVENTYAY_BBB_DATABASE_POOL")
            .is_none()
    );
}

#[test]
fn tls_mounts_the_certificate_secret_and_probes_the_plaintext_health_port() {
    let Some(tools) = tools() else { return };
    let url = format!("database.postgres.url={POSTGRES_URL}");
    for args in [
        &["--set", "tls.existingSecret=bbb-grpc-tls"][..],
        &[
            "--set",
            "tls.existingSecret=bbb-grpc-tls",
            "--set",
            "database.type=postgres",
            "--set",
            &url,
        ][..],
    ] {
        let render = checked_render(&tools, KUBE, args, &[]);
        // The service reads the cert-manager layout from a directory mount (a subPath mount
        // would never see a renewal), and serves TLS on the gRPC port.
        let volumes = render.pod()["volumes"].as_sequence().unwrap();
        let volume = volumes.iter().find(|v| v["name"] == "tls").unwrap();
        assert_eq!(volume["secret"]["secretName"], "bbb-grpc-tls");
        let keys: Vec<&str> = volume["secret"]["items"]
            .as_sequence()
            .unwrap()
            .iter()
            .map(|item| item["key"].as_str().unwrap())
            .collect();
        assert_eq!(keys, ["tls.crt", "tls.key"]);
        let mounts = render.container()["volumeMounts"].as_sequence().unwrap();
        let mount = mounts.iter().find(|m| m["name"] == "tls").unwrap();
        assert!(mount["subPath"].is_null() && mount["readOnly"].as_bool() == Some(true));
        let dir = mount["mountPath"].as_str().unwrap();
        assert_eq!(
            render.env("EVENTYAY_BBB_TLS_CERT"),
            Some(format!("{dir}/tls.crt"))
        );
        assert_eq!(
            render.env("EVENTYAY_BBB_TLS_KEY"),
            Some(format!("{dir}/tls.key"))
        );
        // Kubernetes' gRPC probe speaks no TLS: the probes ask the plaintext health-only port.
        assert_eq!(
            render.env("EVENTYAY_BBB_HEALTH_LISTEN").as_deref(),
            Some("0.0.0.0:50052")
        );
        assert_grpc_probes_on(&render, 50052);
        let ports = render.container()["ports"].as_sequence().unwrap();
        assert!(
            ports
                .iter()
                .any(|p| p["name"] == "health" && p["containerPort"].as_u64() == Some(50052))
        );
        // A renewal must reach the running pods, not roll them.
        let annotations = &render.deployment()["spec"]["template"]["metadata"]["annotations"];
        assert!(
            annotations
                .as_mapping()
                .unwrap()
                .keys()
                .all(|k| !k.as_str().unwrap().contains("tls"))
        );
        assert_restricted(render.pod());
        assert_grpc_service(&render);
    }

    let out = Command::new(&tools.helm)
        .args(["template", RELEASE])
        .arg(chart())
        .args(TOKENS)
        .args([
            "--set",
            "tls.existingSecret=bbb-grpc-tls",
            "--set",
            "tls.healthPort=50051",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("tls.healthPort must differ"));
}

/// The end callback listener, when asked: its address and URL reach the service, its port is on
/// the pods and the Service, the network policy admits it, and the Ingress routes only the
/// callback's path of the URL's host to it. Off by default, and refused without a URL.
#[test]
fn the_end_callback_is_exposed_when_asked() {
    let Some(tools) = tools() else { return };
    let args = [
        "--set",
        "callback.enabled=true",
        "--set",
        "callback.url=https://bbb-callback.example.org/bbb",
        "--set",
        "callback.ingress.enabled=true",
        "--set",
        "callback.ingress.className=nginx",
        "--set",
        "callback.ingress.tlsSecret=bbb-callback-tls",
        "--set",
        "networkPolicy.enabled=true",
    ];
    let render = checked_render(&tools, KUBE, &args, &[]);
    assert_eq!(
        render.env("EVENTYAY_BBB_CALLBACK_LISTEN").as_deref(),
        Some("0.0.0.0:8090")
    );
    assert_eq!(
        render.env("EVENTYAY_BBB_CALLBACK_URL").as_deref(),
        Some("https://bbb-callback.example.org/bbb")
    );
    let ports = render.container()["ports"].as_sequence().unwrap();
    assert!(
        ports
            .iter()
            .any(|p| p["name"] == "callback" && p["containerPort"] == 8090)
    );
    let service = render
        .all("Service")
        .into_iter()
        .find(|s| s["spec"]["clusterIP"] != "None")
        .unwrap();
    let service_ports = service["spec"]["ports"].as_sequence().unwrap();
    assert!(
        service_ports
            .iter()
            .any(|p| p["name"] == "callback" && p["port"] == 8090 && p["targetPort"] == "callback")
    );
    let policy = render.one("NetworkPolicy");
    let admitted = policy["spec"]["ingress"].as_sequence().unwrap();
    assert!(
        admitted
            .iter()
            .any(|rule| rule["ports"][0]["port"] == "callback" && rule["from"].is_null()),
        "BBB servers are outside the cluster: anyone may call by default"
    );

    let ingress = render.one("Ingress");
    let spec = &ingress["spec"];
    assert_eq!(spec["ingressClassName"], "nginx");
    assert_eq!(spec["tls"][0]["hosts"][0], "bbb-callback.example.org");
    assert_eq!(spec["tls"][0]["secretName"], "bbb-callback-tls");
    let rule = &spec["rules"][0];
    assert_eq!(rule["host"], "bbb-callback.example.org");
    let path = &rule["http"]["paths"][0];
    assert_eq!(path["path"], "/bbb/ended");
    assert_eq!(path["pathType"], "Exact");
    assert_eq!(
        path["backend"]["service"]["name"],
        service["metadata"]["name"]
    );
    assert_eq!(path["backend"]["service"]["port"]["name"], "callback");

    let defaults = checked_render(&tools, KUBE, &[], &[]);
    assert!(defaults.all("Ingress").is_empty());
    assert_eq!(defaults.env("EVENTYAY_BBB_CALLBACK_LISTEN"), None);
    let refused = render_raw(
        &tools,
        &[&TOKENS[..], &["--set", "callback.enabled=true"]].concat(),
    )
    .unwrap_err();
    assert!(refused.contains("callback.url is required"), "{refused}");
}
