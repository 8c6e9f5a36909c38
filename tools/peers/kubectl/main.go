// kubectl as k8s.io/kubernetes/cmd/kubectl builds it, from the k8s.io/kubectl library module pinned in go.mod:
// the bench (bench/peers_bench.py) runs it beside k8sdeploy on the same cluster.
package main

import (
	"os"

	"k8s.io/component-base/cli"
	"k8s.io/kubectl/pkg/cmd"
)

func main() {
	os.Exit(cli.Run(cmd.NewDefaultKubectlCommand()))
}
