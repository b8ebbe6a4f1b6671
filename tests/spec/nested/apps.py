from django.apps import AppConfig


class Config(AppConfig):
    name = "tests.spec.nested"
    label = "spec_nested"
