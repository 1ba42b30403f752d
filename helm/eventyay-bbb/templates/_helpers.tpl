{{/* Names are cut to 63 characters: Kubernetes names and label values may be no longer. */}}
{{- define "eventyay-bbb.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* A release called after the chart ("eventyay-bbb") is not named twice. */}}
{{- define "eventyay-bbb.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "eventyay-bbb.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "eventyay-bbb.labels" -}}
helm.sh/chart: {{ include "eventyay-bbb.chart" . }}
app.kubernetes.io/name: {{ include "eventyay-bbb.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/*
The serving pods. The component label keeps the migration Job's pod out of the Services and the
Deployment's selector.
*/}}
{{- define "eventyay-bbb.selectorLabels" -}}
app.kubernetes.io/name: {{ include "eventyay-bbb.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: server
{{- end }}

{{- define "eventyay-bbb.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "eventyay-bbb.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "eventyay-bbb.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{- define "eventyay-bbb.secretName" -}}
{{- default (include "eventyay-bbb.fullname" .) .Values.secret.existingSecret }}
{{- end }}

{{- define "eventyay-bbb.postgres" -}}
{{- if eq .Values.database.type "postgres" }}true{{ end }}
{{- end }}

{{/*
PostgreSQL mode with the database URL under database-url in the release's Secret (the chart's, or
secret.existingSecret). The migration Job runs before the release's own objects exist, so the
chart's Secret must then be a hook too (see secret.yaml).
*/}}
{{- define "eventyay-bbb.databaseUrlInSecret" -}}
{{- if and (include "eventyay-bbb.postgres" .) (not .Values.database.postgres.existingSecret) }}true{{ end }}
{{- end }}

{{/* The database URL's secretKeyRef in PostgreSQL mode; fails early when nothing provides it. */}}
{{- define "eventyay-bbb.databaseUrlRef" -}}
{{- if .Values.database.postgres.existingSecret }}
name: {{ .Values.database.postgres.existingSecret }}
key: {{ .Values.database.postgres.existingSecretKey }}
{{- else }}
{{- if not .Values.secret.existingSecret }}
{{- $_ := required "database.type=postgres needs database.postgres.url, database.postgres.existingSecret, or secret.existingSecret holding database-url" .Values.database.postgres.url }}
{{- end }}
name: {{ include "eventyay-bbb.secretName" . }}
key: database-url
{{- end }}
{{- end }}

{{/* Where the Secret's keys appear as files in the pods. */}}
{{- define "eventyay-bbb.secretDir" -}}
/etc/eventyay-bbb
{{- end }}

{{/* Where the gRPC port's certificate Secret appears: a directory mount, never subPath, or the
kubelet would not update the files when the certificate is renewed. */}}
{{- define "eventyay-bbb.tlsDir" -}}
/etc/eventyay-bbb-tls
{{- end }}

{{/* The port the probes ask: with TLS on, the plaintext health-only port, since Kubernetes'
native gRPC probe cannot do TLS (and an exec probe would need a client in the shell-less image). */}}
{{- define "eventyay-bbb.probePort" -}}
{{- if .Values.tls.existingSecret }}{{ .Values.tls.healthPort }}{{ else }}{{ .Values.grpc.port }}{{ end }}
{{- end }}

{{/* The serving container's env beyond the ConfigMap: what is secret or known only in the pod. */}}
{{- define "eventyay-bbb.serverEnv" -}}
{{- if include "eventyay-bbb.postgres" . }}
{{- /* Replicas never migrate: the hook Job did, before any of them started. */}}
- name: EVENTYAY_BBB_MIGRATE
  value: "false"
- name: EVENTYAY_BBB_DATABASE_URL
  valueFrom:
    secretKeyRef:
      {{- include "eventyay-bbb.databaseUrlRef" . | trim | nindent 6 }}
{{- end }}
{{- if .Values.otel.enabled }}
- name: POD_NAME
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
- name: POD_NAMESPACE
  valueFrom:
    fieldRef:
      fieldPath: metadata.namespace
- name: OTEL_RESOURCE_ATTRIBUTES
  value: "k8s.pod.name=$(POD_NAME),k8s.namespace.name=$(POD_NAMESPACE){{ with .Values.otel.env.OTEL_RESOURCE_ATTRIBUTES }},{{ . }}{{ end }}"
{{- end }}
{{- with .Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
Database connections per replica in PostgreSQL mode. Pods that may run at once: the replica
maximum plus the rollout's surge (maxSurge 25%, rounded up). Each opens its pool and one health
connection; the migration Job, which runs beside the old pods, two.
*/}}
{{- define "eventyay-bbb.databasePool" -}}
{{- $replicas := ternary .Values.autoscaling.maxReplicas .Values.replicaCount .Values.autoscaling.enabled | int }}
{{- $pods := add $replicas (div (add $replicas 3) 4) }}
{{- $max := .Values.database.postgres.maxConnections | int }}
{{- $fits := sub (div (sub $max 2) $pods) 1 }}
{{- $pool := .Values.database.postgres.poolSize | int }}
{{- if eq $pool 0 }}
{{- $pool = min $fits 16 }}
{{- end }}
{{- if or (lt $pool 1) (gt $pool $fits) }}
{{- fail (printf "database.postgres: %d pods (%d replicas at most, plus a rollout's surge) with %d connections each (pool %d, plus one for health) and 2 for the migration Job need %d connections, more than maxConnections=%d allows: lower poolSize or the replicas, or raise maxConnections" $pods $replicas (add (max $pool 1) 1) (max $pool 1) (add (mul $pods (add (max $pool 1) 1)) 2) $max) }}
{{- end }}
{{- $pool }}
{{- end }}
