from django.apps import AppConfig


class Config(AppConfig):
    name = "tests.spec.embedded"
    label = "spec_embedded"
