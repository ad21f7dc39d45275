{{- define "tugboat.labels" -}}
app.kubernetes.io/name: tugboat
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}
{{- define "tugboat.selector" -}}
app.kubernetes.io/name: tugboat
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}
