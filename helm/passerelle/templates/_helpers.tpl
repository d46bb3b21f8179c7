{{/* Names, labels and the pieces every Passerelle pod shares. */}}

{{- define "passerelle.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The release's full name, cut to 63 characters (the longest a label value or DNS name may be). */}}
{{- define "passerelle.fullname" -}}
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

{{/* The full name with a suffix; the base is cut first so the suffix always survives. */}}
{{- define "passerelle.componentName" -}}
{{- $root := index . 0 }}{{- $suffix := index . 1 }}
{{- printf "%s-%s" (include "passerelle.fullname" $root | trunc (int (sub 62 (len $suffix))) | trimSuffix "-") $suffix }}
{{- end }}

{{- define "passerelle.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "passerelle.labels" -}}
helm.sh/chart: {{ include "passerelle.chart" . }}
{{ include "passerelle.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | trunc 63 | trimSuffix "-" | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "passerelle.selectorLabels" -}}
app.kubernetes.io/name: {{ include "passerelle.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Labels and selector labels of one component: (list $ "gateway"). */}}
{{- define "passerelle.componentLabels" -}}
{{ include "passerelle.labels" (index . 0) }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end }}

{{- define "passerelle.componentSelectorLabels" -}}
{{ include "passerelle.selectorLabels" (index . 0) }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end }}

{{- define "passerelle.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "passerelle.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "passerelle.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}
{{- end }}

{{/*
PostgreSQL (and with it the split deployment: workers apart, several replicas, the migration
Job) when a database URL is given or a Secret is named; otherwise the embedded SQLite default.
Returns "true" or "".
*/}}
{{- define "passerelle.postgres" -}}
{{- if or .Values.secrets.existingSecret .Values.secrets.databaseUrl }}true{{ end }}
{{- end }}

{{/* Whether the chart renders its own Secret: "true" or "". */}}
{{- define "passerelle.chartSecret" -}}
{{- $s := .Values.secrets }}
{{- if and (not $s.existingSecret) (or $s.databaseUrl $s.migrationDatabaseUrl $s.redisUrl $s.jwtKeys) }}true{{ end }}
{{- end }}

{{- define "passerelle.secretName" -}}
{{- .Values.secrets.existingSecret | default (include "passerelle.fullname" .) }}
{{- end }}

{{/*
Refuses combinations that would deploy something broken. Included by every workload template,
so `helm template` and `helm install` both stop with the reason.
*/}}
{{- define "passerelle.validate" -}}
{{- $s := .Values.secrets }}
{{- if include "passerelle.postgres" . }}
{{- if and (not $s.existingSecret) (not $s.redisUrl) }}
{{- fail "secrets.redisUrl is required with PostgreSQL: several pods share the cache, rate limits and login lockouts through Redis" }}
{{- end }}
{{- if and (not $s.existingSecret) (not $s.jwtKeys) }}
{{- fail "secrets.jwtKeys is required with PostgreSQL: every gateway pod must sign and verify with the same keys. Make one with: printf 'k1:%s' \"$(head -c 32 /dev/urandom | base64)\"" }}
{{- end }}
{{- else }}
{{- if or (gt (int .Values.replicaCount) 1) .Values.autoscaling.enabled .Values.worker.enabled }}
{{- fail "several pods (replicaCount > 1, autoscaling or worker.enabled) need PostgreSQL: set secrets.databaseUrl or secrets.existingSecret. Without them each pod would have its own SQLite file" }}
{{- end }}
{{- if .Values.secrets.migrationDatabaseUrl }}
{{- fail "secrets.migrationDatabaseUrl needs secrets.databaseUrl (the app role)" }}
{{- end }}
{{- end }}
{{- range $component, $a := dict "autoscaling" .Values.autoscaling "worker.autoscaling" .Values.worker.autoscaling }}
{{- if and $a.enabled (lt (int $a.maxReplicas) (int $a.minReplicas)) }}
{{- fail (printf "%s: maxReplicas must be at least minReplicas" $component) }}
{{- end }}
{{- end }}
{{- end }}

{{/*
A secret key as an environment variable: (list $ "DATABASE_URL" required). With the chart's
own Secret only keys that hold a value are referenced; with existingSecret, optional keys are
marked optional so a Secret without them still starts the pod.
*/}}
{{- define "passerelle.secretEnv" -}}
{{- $root := index . 0 }}{{- $key := index . 1 }}{{- $required := index . 2 }}
{{- $values := dict "DATABASE_URL" $root.Values.secrets.databaseUrl "PASSERELLE_MIGRATION_DATABASE_URL" $root.Values.secrets.migrationDatabaseUrl "REDIS_URL" $root.Values.secrets.redisUrl "PASSERELLE_JWT_KEYS" $root.Values.secrets.jwtKeys }}
{{- if or $root.Values.secrets.existingSecret (get $values $key) }}
- name: {{ $key }}
  valueFrom:
    secretKeyRef:
      name: {{ include "passerelle.secretName" $root }}
      key: {{ $key }}
      {{- if and $root.Values.secrets.existingSecret (not $required) }}
      optional: true
      {{- end }}
{{- end }}
{{- end }}

{{/* What the gateway and the worker connect with: the app role, never the owner's URL. */}}
{{- define "passerelle.appSecretEnv" -}}
{{- include "passerelle.secretEnv" (list . "DATABASE_URL" true) }}
{{- include "passerelle.secretEnv" (list . "REDIS_URL" true) }}
{{- include "passerelle.secretEnv" (list . "PASSERELLE_JWT_KEYS" true) }}
{{- end }}

{{/* Checksums that roll the pods when their configuration changes. */}}
{{- define "passerelle.checksums" -}}
checksum/config: {{ include (print .Template.BasePath "/configmap.yaml") . | sha256sum }}
{{- if include "passerelle.chartSecret" . }}
checksum/secret: {{ include (print .Template.BasePath "/secret.yaml") . | sha256sum }}
{{- end }}
{{- end }}

{{- define "passerelle.volumes" -}}
- name: data
  {{- if .Values.dataVolume.existingClaim }}
  persistentVolumeClaim:
    claimName: {{ .Values.dataVolume.existingClaim }}
  {{- else }}
  emptyDir:
    {{- with .Values.dataVolume.sizeLimit }}
    sizeLimit: {{ . }}
    {{- end }}
  {{- end }}
- name: tmp
  emptyDir:
    {{- with .Values.tmpVolume.sizeLimit }}
    sizeLimit: {{ . }}
    {{- end }}
{{- end }}

{{- define "passerelle.volumeMounts" -}}
- name: data
  mountPath: /var/lib/passerelle
- name: tmp
  mountPath: /tmp
{{- end }}

{{/*
Scheduling of one component's pods: (list $ "gateway" $overrides). Non-empty overrides (the
worker's own nodeSelector, …) replace the top-level values. Topology spread constraints without
a labelSelector get the component's own; the migration Job's single pod has nothing to spread.
*/}}
{{- define "passerelle.scheduling" -}}
{{- $root := index . 0 }}{{- $component := index . 1 }}{{- $own := index . 2 }}
{{- with $root.Values.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- with ($own.nodeSelector | default $root.Values.nodeSelector) }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with ($own.tolerations | default $root.Values.tolerations) }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with ($own.affinity | default $root.Values.affinity) }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- if ne $component "migrate" }}
{{- with ($own.topologySpreadConstraints | default $root.Values.topologySpreadConstraints) }}
{{- $selector := dict "matchLabels" (include "passerelle.componentSelectorLabels" (list $root $component) | fromYaml) }}
{{- $constraints := list }}
{{- range . }}
{{- $constraints = append $constraints (merge (deepCopy .) (dict "labelSelector" $selector)) }}
{{- end }}
topologySpreadConstraints:
  {{- toYaml $constraints | nindent 2 }}
{{- end }}
{{- end }}
{{- end }}

{{/*
The HTTP probes of the gateway and the worker (both serve /livez and /readyz on port http),
from .Values.probes. /livez answers once the process serves and checks nothing else, so a
database or cache outage makes pods unready (/readyz), never restarts them.
*/}}
{{- define "passerelle.probes" -}}
{{- with .Values.probes -}}
startupProbe:
  httpGet:
    path: /livez
    port: http
  periodSeconds: {{ .startup.periodSeconds }}
  timeoutSeconds: {{ .startup.timeoutSeconds }}
  failureThreshold: {{ .startup.failureThreshold }}
livenessProbe:
  httpGet:
    path: /livez
    port: http
  periodSeconds: {{ .liveness.periodSeconds }}
  timeoutSeconds: {{ .liveness.timeoutSeconds }}
  failureThreshold: {{ .liveness.failureThreshold }}
readinessProbe:
  httpGet:
    path: /readyz
    port: http
  periodSeconds: {{ .readiness.periodSeconds }}
  timeoutSeconds: {{ .readiness.timeoutSeconds }}
  failureThreshold: {{ .readiness.failureThreshold }}
{{- end }}
{{- end }}

{{/* The pod-level settings every Passerelle pod shares. */}}
{{- define "passerelle.podCommon" -}}
# No Kubernetes API access is needed, so no token is mounted.
automountServiceAccountToken: false
# No {SERVICE}_PORT… variables: a Service named like a setting could otherwise inject one.
enableServiceLinks: false
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.podSecurityContext }}
securityContext:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/* The egress rules every Passerelle pod gets under networkPolicy.enabled. */}}
{{- define "passerelle.networkPolicyEgress" -}}
{{- $np := .Values.networkPolicy }}
{{- if $np.egress.dns }}
- ports:
    - port: 53
      protocol: UDP
    - port: 53
      protocol: TCP
{{- end }}
{{- if $np.egress.publicInternet }}
- to:
    - ipBlock:
        cidr: 0.0.0.0/0
        except:
          - 0.0.0.0/8
          - 10.0.0.0/8
          - 100.64.0.0/10
          - 127.0.0.0/8
          - 169.254.0.0/16
          - 172.16.0.0/12
          - 192.168.0.0/16
    - ipBlock:
        cidr: ::/0
        except:
          - ::1/128
          - fc00::/7
          - fe80::/10
{{- end }}
{{- with $np.egress.extra }}
{{ toYaml . }}
{{- end }}
{{- end }}
