"""The user-path stage (.ci/user_path.sh): scripts that a real Blender binary runs on the shipped
zip and engine. They are run by Blender, not collected by pytest (their names do not start with
``test_``)."""
