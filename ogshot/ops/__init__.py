"""Operations: Prometheus metrics, logging, Sentry and alert webhooks. Handed in to the layers
below (a metrics object, callbacks); never imported by them."""
