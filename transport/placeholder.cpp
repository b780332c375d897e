namespace interfaced {}
