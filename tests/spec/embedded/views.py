# Djongo's "Using Pymongo commands" example, as printed.
from django.views.generic import DetailView

from .models import Entry


class EntryView(DetailView):

    def get_object(self, queryset=None):
        index = [i for i in Entry.objects.mongo_aggregate([
            {
                '$match': {
                    'headline': self.kwargs['path']
                }
            },
        ])]

        return index
