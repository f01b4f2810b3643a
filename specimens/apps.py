from django.apps import AppConfig


class SpecimensConfig(AppConfig):
    name = "specimens"
