"""ogshot in Django templates. Add ``"ogshot.contrib.django"`` to ``INSTALLED_APPS``, set
``OGSHOT_BASE_URL`` (and ``OGSHOT_SECRET``, else the environment's) in settings, then:

    {% load ogshot %}
    <head>{% ogshot_meta "article" title=post.title alt=post.title %}</head>
    <img src="{% ogshot_url "article" title=post.title %}">

See :mod:`ogshot.contrib.django.templatetags.ogshot`."""
