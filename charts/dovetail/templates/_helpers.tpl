{{/* The chart's name. */}}
{{- define "dovetail.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The name of every object: the release's, with the chart's name unless it holds it. */}}
{{- define "dovetail.fullname" -}}
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

{{- define "dovetail.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "dovetail.labels" -}}
helm.sh/chart: {{ include "dovetail.chart" . }}
{{ include "dovetail.selectorLabels" . }}
{{- if .Chart.AppVersion }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with .Values.additionalLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "dovetail.selectorLabels" -}}
app.kubernetes.io/name: {{ include "dovetail.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "dovetail.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "dovetail.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "dovetail.image" -}}
{{- $image := .Values.controller.image }}
{{- if $image.digest }}
{{- printf "%s@%s" $image.repository $image.digest }}
{{- else }}
{{- printf "%s:%s" $image.repository (default .Chart.AppVersion $image.tag) }}
{{- end }}
{{- end }}

{{/* The Lease the replicas elect a leader on; the Role names it. */}}
{{- define "dovetail.leaseName" -}}
{{- printf "%s-leader-election" (include "dovetail.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Whether the controller reads the `kubernetes` Service for the service CIDR. */}}
{{- define "dovetail.readsKubernetesService" -}}
{{- if and (eq .Values.settings.cloudProvider "aws") (not .Values.settings.serviceCIDR) }}true{{ end }}
{{- end }}

{{/* FEATURE_GATES as Karpenter's chart writes it. */}}
{{- define "dovetail.featureGates" -}}
{{- $g := .Values.settings.featureGates -}}
{{- printf "ReservedCapacity=%t,SpotToSpotConsolidation=%t,NodeRepair=%t,NodeOverlay=%t,StaticCapacity=%t,CapacityBuffer=%t" $g.reservedCapacity $g.spotToSpotConsolidation $g.nodeRepair $g.nodeOverlay $g.staticCapacity $g.capacityBuffer }}
{{- end }}

{{/* The required settings, refused with the fix when missing. */}}
{{- define "dovetail.checkSettings" -}}
{{- $s := .Values.settings }}
{{- if not $s.clusterName }}
{{- fail "settings.clusterName is required: set it to the cluster's name (--set settings.clusterName=my-cluster); it tags and finds the instances" }}
{{- end }}
{{- if and (eq $s.cloudProvider "aws") (not $s.clusterEndpoint) }}
{{- fail "settings.clusterEndpoint is required with settings.cloudProvider=aws: set it to the API server address new nodes join (--set settings.clusterEndpoint=$(aws eks describe-cluster --name my-cluster --query cluster.endpoint --output text))" }}
{{- end }}
{{- end }}

{{/* .Values.affinity with the selector labels added to pod anti-affinity terms that have no selector. */}}
{{- define "dovetail.affinity" -}}
{{- $affinity := deepCopy .Values.affinity }}
{{- $selector := include "dovetail.selectorLabels" . | fromYaml }}
{{- with $affinity.podAntiAffinity }}
{{- range .requiredDuringSchedulingIgnoredDuringExecution }}
{{- if not .labelSelector }}
{{- $_ := set . "labelSelector" (dict "matchLabels" $selector) }}
{{- end }}
{{- end }}
{{- range .preferredDuringSchedulingIgnoredDuringExecution }}
{{- if not .podAffinityTerm.labelSelector }}
{{- $_ := set .podAffinityTerm "labelSelector" (dict "matchLabels" $selector) }}
{{- end }}
{{- end }}
{{- end }}
{{- toYaml $affinity }}
{{- end }}

{{/* .Values.topologySpreadConstraints, each without a selector given the selector labels. */}}
{{- define "dovetail.topologySpreadConstraints" -}}
{{- $selector := include "dovetail.selectorLabels" . | fromYaml }}
{{- $out := list }}
{{- range .Values.topologySpreadConstraints }}
{{- $c := deepCopy . }}
{{- if not $c.labelSelector }}
{{- $_ := set $c "labelSelector" (dict "matchLabels" $selector) }}
{{- end }}
{{- $out = append $out $c }}
{{- end }}
{{- toYaml $out }}
{{- end }}

{{/*
One policy ConfigMap. Arguments: the root context, the decision
(`instance-selection`), the values key naming it (for messages), the policy
({component, config} or {url, sha256, config}) and the mode (`live` or `shadow`).
*/}}
{{- define "dovetail.policyConfigMap" -}}
{{- $root := index . 0 }}
{{- $decision := index . 1 }}
{{- $key := index . 2 }}
{{- $policy := index . 3 }}
{{- $mode := index . 4 }}
{{- $component := $policy.component | default "" | replace "\n" "" | replace "\r" "" | replace " " "" }}
{{- $url := $policy.url | default "" | trim }}
{{- $sha256 := $policy.sha256 | default "" | trim }}
{{- if and $component $url }}
{{- fail (printf "%s has both a component and a url: give one (a component up to about 700 KiB, a url for anything larger)" $key) }}
{{- end }}
{{- if and $url (not $sha256) }}
{{- fail (printf "%s.url needs %s.sha256, the sha256 of the component's bytes (`sha256sum policy.wasm`), which pins what the controller runs" $key $key) }}
{{- end }}
{{- if and $sha256 (not $url) }}
{{- fail (printf "%s.sha256 pins a component fetched from %s.url; give the url, or leave the sha256 out" $key $key) }}
{{- end }}
{{- if $component }}
{{- if not (hasPrefix "AGFzbQ" $component) }}
{{- fail (printf "%s.component is not a base64 Wasm component (its base64 starts with AGFzbQ, the encoding of \\0asm): give the file of `base64 -w0 policy.wasm` with --set-file %s.component=policy.b64" $key $key) }}
{{- end }}
{{- end }}
{{- if or $component $url }}
{{- $name := printf "%s-%s" (include "dovetail.fullname" $root) $decision }}
{{- if eq $mode "shadow" }}
{{- $name = printf "%s-shadow" $name }}
{{- end }}
{{- $config := $policy.config }}
{{- if kindIs "string" $config }}
{{- if and $config (hasKey (fromJson $config) "Error") }}
{{- fail (printf "%s.config is not a JSON object: give it as YAML (config: {k: v}) or as JSON text ('{\"k\": 1}')" $key) }}
{{- end }}
{{- else if $config }}
{{- $config = toJson $config }}
{{- else }}
{{- $config = "" }}
{{- end }}
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ $name | trunc 63 | trimSuffix "-" }}
  namespace: {{ $root.Release.Namespace }}
  labels:
    {{- include "dovetail.labels" $root | nindent 4 }}
    dovetail.dev/policy: {{ $decision }}
    {{- if eq $mode "shadow" }}
    dovetail.dev/policy-mode: shadow
    {{- end }}
  {{- with $root.Values.additionalAnnotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- if $component }}
binaryData:
  {{ $decision }}.wasm: {{ $component }}
{{- end }}
{{- if or $url $config }}
data:
  {{- if $url }}
  {{ $decision }}.url: {{ $url | quote }}
  {{ $decision }}.sha256: {{ $sha256 | quote }}
  {{- end }}
  {{- if $config }}
  {{ $decision }}.json: {{ $config | quote }}
  {{- end }}
{{- end }}
{{- end }}
{{- end }}
