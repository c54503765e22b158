package main

import "net/http"

// healthz answers load-balancer health checks.
func healthz(w http.ResponseWriter, r *http.Request) {
	w.WriteHeader(http.StatusOK)
}

func main() {
	http.HandleFunc("/healthz", healthz)
	http.ListenAndServe(":8080", nil)
}
