from django.apps import AppConfig


class OrdersConfig(AppConfig):
    name = "orders"

    def ready(self) -> None:
        from orders import patterns, services
        from results.signals import results_verified

        results_verified.connect(services.on_results_verified, dispatch_uid="orders.discontinue_alerts")
        results_verified.connect(patterns.on_results_verified, dispatch_uid="orders.patterns")
