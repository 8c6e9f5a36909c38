//go:build tools

// Pins helm.sh/helm/v4, whose cmd/helm the bench (bench/peers_bench.py) builds and runs beside k8sdeploy.
package tools

import _ "helm.sh/helm/v4/cmd/helm"
