{{/* Chart name, truncated to the 63 characters DNS names allow. */}}
{{- define "dockward.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Fully qualified app name. */}}
{{- define "dockward.fullname" -}}
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

{{- define "dockward.namespace" -}}
{{- default .Release.Namespace .Values.namespaceOverride }}
{{- end }}

{{- define "dockward.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "dockward.selectorLabels" -}}
app.kubernetes.io/name: {{ include "dockward.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "dockward.labels" -}}
helm.sh/chart: {{ include "dockward.chart" . }}
{{ include "dockward.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: agent
app.kubernetes.io/part-of: dockward
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "dockward.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "dockward.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* registry/repository:tag or registry/repository@digest. */}}
{{- define "dockward.image" -}}
{{- $repo := .Values.image.repository }}
{{- if .Values.image.registry }}
{{- $repo = printf "%s/%s" .Values.image.registry .Values.image.repository }}
{{- end }}
{{- if .Values.image.digest }}
{{- printf "%s@%s" $repo .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" $repo (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* The common labels merged with extra ones (list context extra); the
chart's own labels win, so a selector label cannot be overridden, and no key
appears twice. */}}
{{- define "dockward.mergedLabels" -}}
{{- $ctx := index . 0 }}
{{- $labels := include "dockward.labels" $ctx | fromYaml }}
{{- toYaml (merge $labels (index . 1 | default dict)) }}
{{- end }}

{{/* The agent's config: .Values.config, with the top-level rootfs at /host
when the host's / is mounted there (a rootfs given in values wins). */}}
{{- define "dockward.config" -}}
{{- $cfg := deepCopy (.Values.config | default dict) }}
{{- if .Values.hostRootFsMount.enabled }}
{{- $cfg = mustMergeOverwrite (dict "rootfs" "/host") $cfg }}
{{- end }}
{{- toYaml $cfg }}
{{- end }}
